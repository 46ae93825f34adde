-- public.list_purchases: a user's purchases, newest first (the owner's view and wanctl's);
-- p_limit (1-500) comes from the caller.
drop function if exists public.list_purchases(uuid, integer);
create or replace function public.list_purchases(p_user_id uuid, p_limit integer)
returns table (purchase jsonb)
language plpgsql stable security definer set search_path = '' as $$
begin
  perform private.require_between('limit', p_limit, 1, 500);
  return query
    select to_jsonb(p) from public.purchases p
     where p.user_id = p_user_id
     order by p.created_at desc, p.id desc
     limit p_limit;
end
$$;

comment on function public.list_purchases(uuid, integer) is
  'A user''s purchases, newest first (at most 500).';
