-- list_generations: the owner's generations, newest first, keyset pagination on
-- (created_at, id) so a page costs the same however deep it is. Deleted ones are left out.
--
-- Two queries, not one `(p_before is null or (created_at, id) < ...)`: PL/pgSQL caches a generic
-- plan after a few calls, and in a generic plan that OR cannot be an index bound, so a page
-- 100,000 rows deep read and dropped 100,000 rows. Each query below keeps the keyset in the
-- index condition of generations_user_created_idx whatever plan is cached (bench: history).
-- The old signature carried defaults, which create or replace cannot take away.
drop function if exists public.list_generations(uuid, integer, timestamptz, uuid);
create or replace function public.list_generations(
  p_user_id uuid, p_limit integer, p_before_created_at timestamptz, p_before_id uuid
) returns table (generation jsonb)
language plpgsql stable security definer set search_path = '' as $$
begin
  perform private.require_between('limit', p_limit, 1, 100);
  if (p_before_created_at is null) <> (p_before_id is null) then
    raise exception using errcode = 'WN422', message = 'cursor is incomplete';
  end if;
  if p_before_created_at is null then
    return query
    select to_jsonb(g.*) from public.generations g
     where g.user_id = p_user_id and g.deleted_at is null
     order by g.created_at desc, g.id desc
     limit p_limit;
  else
    return query
    select to_jsonb(g.*) from public.generations g
     where g.user_id = p_user_id and g.deleted_at is null
       and (g.created_at, g.id) < (p_before_created_at, p_before_id)
     order by g.created_at desc, g.id desc
     limit p_limit;
  end if;
end
$$;

comment on function public.list_generations is
  'The owner''s generations, newest first, a page of p_limit before the (created_at, id) cursor.';
