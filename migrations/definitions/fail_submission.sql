-- fail_submission: the provider create failed (refused, down, or no answer in time).
--
-- Fails and refunds the generation ONLY if nothing was heard from the provider yet (still
-- queued, no job id). A create that timed out may still have started a prediction whose
-- webhook (it carries our generation id) already moved the row on; that row is left alone and
-- lives on. The sweeper uses the same function for queued rows that never got a job id.
-- finished_by records the outcome's path: 'submit' (no provider report).
-- balance: the owner's balance after the refund, read under the user's lock that the refund
-- took (the refused create's error reports it); null when nothing changed.
-- The old signature returned no balance, which create or replace cannot add.
drop function if exists public.fail_submission(uuid, text);
create or replace function public.fail_submission(p_generation_id uuid, p_error text)
returns table (generation jsonb, changed boolean, refunded integer, balance integer)
language plpgsql volatile security definer set search_path = '' as $$
declare v_row public.generations;
  v_refunded integer;
  v_balance integer;
begin
  v_row := private.lock_generation(p_generation_id, null);
  if v_row.status <> 'queued' or v_row.job_id is not null then
    return query select to_jsonb(v_row), false, 0, null::integer;
    return;
  end if;
  update public.generations g
     set status = 'failed',
         error_message = coalesce(nullif(p_error, ''), 'The video provider did not accept it'),
         completed_at = now(), updated_at = now(), finished_by = 'submit'
   where g.id = p_generation_id
  returning * into v_row;
  v_refunded := private.refund(p_generation_id, 'Refund: provider did not accept it');
  select u.credits into v_balance from public.users u where u.id = v_row.user_id;
  return query select to_jsonb(v_row), true, v_refunded, v_balance;
end
$$;

comment on function public.fail_submission is
  'Fail and refund a generation the provider never accepted; a no-op once the provider was heard.';
