-- read_generation: the owner's generation with a bounded polling claim (body from 0005;
-- issue 14: a deleted generation is not found). claimed = true when the caller should ask the
-- provider.
create or replace function public.read_generation(
  p_user_id uuid,
  p_generation_id uuid,
  p_poll_after_s integer default 30,
  p_max_polls integer default 20
) returns table (generation jsonb, claimed boolean)
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_row public.generations;
begin
  update public.generations g
     set last_polled_at = now(), poll_attempts = g.poll_attempts + 1
   where g.id = p_generation_id
     and g.user_id = p_user_id
     and g.deleted_at is null
     and g.status in ('queued', 'processing')
     and g.job_id is not null
     and g.poll_attempts < p_max_polls
     and greatest(g.updated_at, g.last_polled_at) <= now() - make_interval(secs => p_poll_after_s)
  returning g.* into v_row;
  if found then
    return query select to_jsonb(v_row), true;
    return;
  end if;
  select * into v_row from public.generations g
   where g.id = p_generation_id and g.user_id = p_user_id and g.deleted_at is null;
  if not found then
    perform private.raise_generation_not_found();
  end if;
  return query select to_jsonb(v_row), false;
end
$$;


revoke execute on function public.read_generation(uuid, uuid, integer, integer) from public, anon, authenticated;
grant execute on function public.read_generation(uuid, uuid, integer, integer) to service_role;
