-- private.lock_purchase: lock a purchase's row and return it (WN404 when there is none).
-- Lock order of the payment functions: the purchase, then its user (private.lock_user), the
-- same order for a webhook, the reconciliation pass and a refund, so they never deadlock.
-- FOR NO KEY UPDATE like every lock here: ledger rows pointing at the purchase (FOR KEY SHARE
-- of their foreign-key check) never wait on it.
create or replace function private.lock_purchase(p_purchase_id uuid)
returns public.purchases
language plpgsql security definer set search_path = '' as $$
declare v_row public.purchases;
begin
  select * into v_row from public.purchases p where p.id = p_purchase_id for no key update;
  perform private.require_found(found, 'purchase');
  return v_row;
end
$$;

comment on function private.lock_purchase is
  'Lock a purchase (FOR NO KEY UPDATE) and return it; WN404 when there is no such purchase.';
