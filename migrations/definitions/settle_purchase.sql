-- public.settle_purchase: the reconciliation pass's answer from Stripe for one purchase (the
-- same rule as the webhook: private.settle_checkout). p_result: paid, unpaid, failed, expired.
create or replace function public.settle_purchase(
  p_purchase_id uuid,
  p_result text,
  p_payment_intent text default null,
  p_amount integer default null,
  p_currency text default null
) returns table (outcome text, purchase jsonb)
language plpgsql volatile security definer set search_path = '' as $$
declare v_outcome text;
begin
  v_outcome := private.settle_checkout(
    p_purchase_id, p_result, p_payment_intent, p_amount, p_currency);
  return query select v_outcome, (select to_jsonb(p) from public.purchases p where p.id = p_purchase_id);
end
$$;

comment on function public.settle_purchase(uuid, text, text, integer, text) is
  'Apply what Stripe says of a purchase''s session (reconciliation); idempotent.';
