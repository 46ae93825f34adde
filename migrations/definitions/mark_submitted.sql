-- mark_submitted: the provider accepted the prediction; queued -> processing with its job id.
-- changed = false when the row had already moved on (a webhook or the sweeper got there first);
-- the caller then compares job ids to decide whether its prediction is an orphan to cancel.
create or replace function public.mark_submitted(p_generation_id uuid, p_job_id text)
returns table (generation jsonb, changed boolean)
language plpgsql volatile security definer set search_path = '' as $$
declare v_row public.generations;
begin
  perform private.require_text('job_id', p_job_id);
  v_row := private.lock_generation(p_generation_id, null);
  if v_row.status <> 'queued' or v_row.job_id is not null then
    return query select to_jsonb(v_row), false;
    return;
  end if;
  update public.generations g
     set status = 'processing', job_id = p_job_id, started_at = coalesce(g.started_at, now()),
         updated_at = now()
   where g.id = p_generation_id
  returning * into v_row;
  return query select to_jsonb(v_row), true;
end
$$;

comment on function public.mark_submitted is
  'queued -> processing with the provider''s job id; changed = false when it had moved on.';
revoke all on function public.mark_submitted(uuid, text) from public, anon, authenticated;
grant execute on function public.mark_submitted(uuid, text) to service_role;
