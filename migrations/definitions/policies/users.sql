-- public.users: what API users may read. Only the SECURITY DEFINER functions (run as the
-- owner) write; the owner reads their own row.
-- (The migration runner, shared/db/migrate.py, has already turned RLS on and left service_role's
-- SELECT as the only privilege.)

grant select on public.users to authenticated;

drop policy if exists users_select_own on public.users;
create policy users_select_own on public.users
  for select to authenticated using (id = (select auth.uid()));
