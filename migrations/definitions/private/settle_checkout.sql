-- private.settle_checkout: what Stripe says of a purchase's Checkout Session, applied once.
-- p_result: paid | unpaid (completed, an asynchronous payment still on its way) | failed |
-- expired. The webhook and the reconciliation pass both end here.
--
-- Money received always wins: `paid` moves pending, failed or expired to paid (or to review
-- when the amount or currency differs from the pack, granting nothing); failed and expired
-- only end a pending purchase. The grant is one ledger entry per purchase (unique index).
-- Then refunds or disputes that arrived before the payment was known are applied.
-- Returns the outcome: granted, review, failed, expired or unchanged (WN404: no such purchase).
-- Lock order: the purchase (private.lock_purchase), then its user.
create or replace function private.settle_checkout(
  p_purchase_id uuid,
  p_result text,
  p_payment_intent text,
  p_amount integer,
  p_currency text
) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare v public.purchases;
  v_outcome text := 'unchanged';
begin
  if p_result is null or p_result not in ('paid', 'unpaid', 'failed', 'expired') then
    raise exception using errcode = 'WN422', message = 'result must be paid, unpaid, failed or expired';
  end if;
  v := private.lock_purchase(p_purchase_id);
  if p_payment_intent is not null and v.payment_intent is null then
    update public.purchases set payment_intent = p_payment_intent, updated_at = now()
     where id = v.id;
    v.payment_intent := p_payment_intent;
  end if;

  if p_result = 'paid' and v.status not in ('paid', 'review') then
    if p_amount is distinct from v.amount or lower(p_currency) is distinct from v.currency then
      update public.purchases
         set status = 'review', paid_amount = p_amount, paid_currency = lower(p_currency),
             review_reason = format('paid %s %s, but the pack costs %s %s',
                                    coalesce(p_amount::text, 'nothing'),
                                    upper(coalesce(p_currency, '?')), v.amount, upper(v.currency)),
             closed_at = now(), updated_at = now()
       where id = v.id;
      v_outcome := 'review';
    else
      update public.purchases
         set status = 'paid', paid_amount = p_amount, paid_currency = lower(p_currency),
             paid_at = now(), closed_at = null, updated_at = now()
       where id = v.id;
      if v.user_id is not null then
        perform private.post_ledger(
          v.user_id, v.credits, 'purchase', null,
          format('Bought the %s pack (%s credits)', v.pack_id, v.credits), v.id, null);
      end if;
      v_outcome := 'granted';
    end if;
  elsif p_result in ('failed', 'expired') and v.status = 'pending' then
    update public.purchases set status = p_result, closed_at = now(), updated_at = now()
     where id = v.id;
    v_outcome := p_result;
  end if;

  -- Refunds and disputes that named only this payment, before the payment was known.
  perform private.apply_unmatched_events(v.id);
  perform private.settle_reversals(v.id);
  return v_outcome;
end
$$;

comment on function private.settle_checkout(uuid, text, text, integer, text) is
  'Apply a Checkout Session''s outcome to its purchase: grant once (if the amount matches), '
  'fail, expire; then apply refunds and disputes that came first.';
