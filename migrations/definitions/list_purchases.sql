-- public.list_purchases: a user's purchases, newest first (the owner's view and wanctl's).
create or replace function public.list_purchases(p_user_id uuid, p_limit integer default 50)
returns table (purchase jsonb)
language sql
stable
security definer
set search_path = ''
as $$
  select to_jsonb(p) from public.purchases p
   where p.user_id = p_user_id
   order by p.created_at desc, p.id desc
   limit least(greatest(coalesce(p_limit, 50), 1), 500)
$$;

comment on function public.list_purchases(uuid, integer) is
  'A user''s purchases, newest first (at most 500).';
revoke all on function public.list_purchases(uuid, integer) from public, anon, authenticated;
grant execute on function public.list_purchases(uuid, integer) to service_role;
