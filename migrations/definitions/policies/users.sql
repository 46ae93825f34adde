-- public.users: row-level security, its policies and the API roles' privileges.
-- Only the SECURITY DEFINER functions (run as the owner) write; the owner reads their own row.
alter table public.users enable row level security;

revoke all on public.users from anon, authenticated, service_role;
grant select on public.users to authenticated, service_role;

drop policy if exists users_select_own on public.users;
create policy users_select_own on public.users
  for select to authenticated using (id = (select auth.uid()));
