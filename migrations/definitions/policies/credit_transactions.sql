-- public.credit_transactions: what API users may read. Only the SECURITY DEFINER functions
-- (run as the owner) write; the owner reads their own rows.
-- (The migration runner, shared/db/migrate.py, has already turned RLS on and left service_role's
-- SELECT as the only privilege.)

grant select on public.credit_transactions to authenticated;

drop policy if exists credit_transactions_select_own on public.credit_transactions;
create policy credit_transactions_select_own on public.credit_transactions
  for select to authenticated using (user_id = (select auth.uid()));
