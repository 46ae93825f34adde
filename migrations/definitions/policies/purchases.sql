-- public.purchases: what API users may read. Only the SECURITY DEFINER payment functions (run
-- as the owner) write; the owner reads their own purchases, but not our bookkeeping with
-- Stripe: session and payment ids, the checkout link, the idempotency key, review notes,
-- reconciliation counters. A new column is hidden until it is added to this list.
-- (The migration runner, shared/db/migrate.py, has already turned RLS on and left service_role's
-- SELECT as the only privilege.)

grant select (
  id, user_id, pack_id, credits, amount, currency, status, amount_refunded, dispute_status,
  credits_reversed, credits_owed, created_at, paid_at
) on public.purchases to authenticated;

drop policy if exists purchases_select_own on public.purchases;
create policy purchases_select_own on public.purchases
  for select to authenticated using (user_id = (select auth.uid()));
