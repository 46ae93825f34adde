-- public.purchases: row-level security, its policies and the API roles' privileges.
-- Only the SECURITY DEFINER payment functions (run as the owner) write; the owner reads their
-- own purchases, but not our bookkeeping with Stripe: session and payment ids, the checkout
-- link, the idempotency key, review notes, reconciliation counters. A new column is hidden
-- until it is added to this list.
alter table public.purchases enable row level security;

revoke all on public.purchases from anon, authenticated, service_role;
grant select on public.purchases to service_role;
grant select (
  id, user_id, pack_id, credits, amount, currency, status, amount_refunded, dispute_status,
  credits_reversed, credits_owed, created_at, paid_at
) on public.purchases to authenticated;

drop policy if exists purchases_select_own on public.purchases;
create policy purchases_select_own on public.purchases
  for select to authenticated using (user_id = (select auth.uid()));
