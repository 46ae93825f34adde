-- request_cancel: the owner asks to stop. A queued row (no prediction yet) is canceled and
-- refunded at once (finished_by = 'cancel'); a processing one is marked and the caller cancels
-- it at the provider. A deleted generation is not found.
create or replace function public.request_cancel(p_user_id uuid, p_generation_id uuid)
returns table (generation jsonb, changed boolean, refunded integer)
language plpgsql volatile security definer set search_path = '' as $$
declare v_row public.generations;
begin
  v_row := private.lock_generation(p_generation_id, p_user_id);
  perform private.require_found(v_row.deleted_at is null, 'generation');
  if v_row.status in ('completed', 'failed', 'canceled') then
    raise exception using errcode = 'WN412', message = 'generation is already finished',
      detail = json_build_object('status', v_row.status)::text;
  end if;
  if v_row.job_id is null then
    update public.generations g
       set status = 'canceled', error_message = 'Canceled by user', finished_by = 'cancel',
           cancel_requested_at = coalesce(g.cancel_requested_at, now()),
           completed_at = now(), updated_at = now()
     where g.id = p_generation_id
    returning * into v_row;
    return query select to_jsonb(v_row), true, private.refund(p_generation_id, 'Refund: canceled');
    return;
  end if;
  -- A running one is marked once; a second request changes nothing (FOUND is false).
  update public.generations g set cancel_requested_at = now(), updated_at = now()
   where g.id = p_generation_id and g.cancel_requested_at is null;
  return query select to_jsonb(g.*), found, 0
    from public.generations g where g.id = p_generation_id;
end
$$;

comment on function public.request_cancel is
  'The owner''s cancel: a queued row is canceled and refunded now, a running one is marked.';
