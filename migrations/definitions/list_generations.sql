-- list_generations: the owner's generations, newest first, keyset pagination on
-- (created_at, id) so a page costs the same however deep it is.
--
-- Two queries, not one `(p_before is null or (created_at, id) < ...)`: PL/pgSQL caches a generic
-- plan after a few calls, and in a generic plan that OR cannot be an index bound, so a page
-- 100,000 rows deep read and dropped 100,000 rows. Each query below keeps the keyset in the
-- index condition of generations_user_created_idx whatever plan is cached (bench: history).

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
  if p_before_created_at is null then
    return query
    select to_jsonb(g.*) from public.generations g
     where g.user_id = p_user_id
     order by g.created_at desc, g.id desc
     limit p_limit;
  else
    return query
    select to_jsonb(g.*) from public.generations g
     where g.user_id = p_user_id and (g.created_at, g.id) < (p_before_created_at, p_before_id)
     order by g.created_at desc, g.id desc
     limit p_limit;
  end if;
end
$$;

comment on function public.list_generations(uuid, integer, timestamptz, uuid) is
  'The owner''s generations, newest first; keyset cursor (created_at, id) of the last row seen.';

revoke execute on function public.list_generations(uuid, integer, timestamptz, uuid)
  from public, anon, authenticated;
grant execute on function public.list_generations(uuid, integer, timestamptz, uuid)
  to service_role;
