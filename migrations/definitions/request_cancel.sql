-- request_cancel: the owner asks to stop (body from 0003; issue 14: a deleted generation is
-- not found, and a queued one canceled here records finished_by = 'cancel'). A queued row (no
-- prediction yet) is canceled and refunded at once; a processing one is marked and the caller
-- cancels it at the provider.
create or replace function public.request_cancel(p_user_id uuid, p_generation_id uuid)
returns table (generation jsonb, changed boolean, refunded integer)
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_row public.generations;
  v_refunded integer := 0;
begin
  select * into v_row from public.generations g
   where g.id = p_generation_id and g.user_id = p_user_id and g.deleted_at is null for update;
  if not found then
    perform private.raise_generation_not_found();
  end if;
  if private.status_rank(v_row.status) = 2 then
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
    v_refunded := private.refund(p_generation_id, 'Refund: canceled');
  elsif v_row.cancel_requested_at is null then
    update public.generations g
       set cancel_requested_at = now(), updated_at = now()
     where g.id = p_generation_id
    returning * into v_row;
  else
    return query select to_jsonb(v_row), false, 0;
    return;
  end if;
  return query select to_jsonb(v_row), true, v_refunded;
end
$$;


revoke execute on function public.request_cancel(uuid, uuid) from public, anon, authenticated;
grant execute on function public.request_cancel(uuid, uuid) to service_role;
