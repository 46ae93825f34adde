-- private.payment_hold_reasons: the hold reasons payments set, and so may lift by themselves
-- (a hold an operator or another rule placed is never lifted by a payment event).
create or replace function private.payment_hold_reasons()
returns text[]
language sql immutable security definer set search_path = '' as $$
  select array[
    'a card payment is disputed',
    'a refund left credits owed'
  ]
$$;

comment on function private.payment_hold_reasons() is
  'Hold reasons set by payment events; only these are lifted automatically.';
