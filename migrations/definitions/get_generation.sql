-- get_generation: the owner's view of one generation (body from 0003; issue 14: a deleted
-- generation is not found).
create or replace function public.get_generation(p_user_id uuid, p_generation_id uuid)
returns table (generation jsonb)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  return query select to_jsonb(g.*) from public.generations g
   where g.id = p_generation_id and g.user_id = p_user_id and g.deleted_at is null;
  if not found then
    perform private.raise_generation_not_found();
  end if;
end
$$;


revoke execute on function public.get_generation(uuid, uuid) from public, anon, authenticated;
grant execute on function public.get_generation(uuid, uuid) to service_role;
