-- list_generations: the owner's generations, newest first, keyset pagination (body from 0005;
-- issue 14: deleted generations are left out).
create or replace function public.list_generations(
  p_user_id uuid,
  p_limit integer default 20,
  p_before_created_at timestamptz default null,
  p_before_id uuid default null
) returns table (generation jsonb)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if p_limit is null or p_limit not between 1 and 100 then
    raise exception using errcode = 'WN422', message = 'limit must be 1-100';
  end if;
  if (p_before_created_at is null) <> (p_before_id is null) then
    raise exception using errcode = 'WN422', message = 'cursor is incomplete';
  end if;
  return query
  select to_jsonb(g.*) from public.generations g
   where g.user_id = p_user_id
     and g.deleted_at is null
     and (p_before_created_at is null or (g.created_at, g.id) < (p_before_created_at, p_before_id))
   order by g.created_at desc, g.id desc
   limit p_limit;
end
$$;


revoke execute on function public.list_generations(uuid, integer, timestamptz, uuid) from public, anon, authenticated;
grant execute on function public.list_generations(uuid, integer, timestamptz, uuid) to service_role;
