-- public.credit_transactions: row-level security, its policies and the API roles' privileges.
-- Only the SECURITY DEFINER functions (run as the owner) write; the owner reads their own rows.
alter table public.credit_transactions enable row level security;

revoke all on public.credit_transactions from anon, authenticated, service_role;
grant select on public.credit_transactions to authenticated, service_role;

drop policy if exists credit_transactions_select_own on public.credit_transactions;
create policy credit_transactions_select_own on public.credit_transactions
  for select to authenticated using (user_id = (select auth.uid()));
