-- public.generations: row-level security, its policies and the API roles' privileges.
-- Only the SECURITY DEFINER functions (run as the owner) write; the owner reads their own rows.
alter table public.generations enable row level security;

revoke all on public.generations from anon, authenticated, service_role;
grant select on public.generations to authenticated, service_role;

drop policy if exists generations_select_own on public.generations;
create policy generations_select_own on public.generations
  for select to authenticated using (user_id = (select auth.uid()));
