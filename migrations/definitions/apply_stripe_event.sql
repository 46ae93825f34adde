-- public.apply_stripe_event: one verified Stripe event, applied exactly once.
--
-- The event id is recorded first (insert ... on conflict do nothing): a replay, or a concurrent
-- delivery of the same event, waits for the first one's transaction and then changes nothing.
-- The caller (Python) has already verified the signature and reduced the event to the fields
-- below; p_purchase_id is our id from the session's client_reference_id or the metadata.
--   checkout.session.completed              paid (payment_status paid) or unpaid (async method)
--   checkout.session.async_payment_succeeded paid
--   checkout.session.async_payment_failed   failed
--   checkout.session.expired                expired
--   charge.refunded                         p_amount_refunded (cumulative)
--   charge.dispute.created / .closed        p_dispute_status open / won / lost
--   anything else                           recorded, ignored
-- A refund or dispute for a payment not known yet is kept as `unmatched` and applied when the
-- payment is (private.settle_checkout).
create or replace function public.apply_stripe_event(
  p_event_id text,
  p_type text,
  p_purchase_id uuid default null,
  p_payment_intent text default null,
  p_payment_status text default null,
  p_amount integer default null,
  p_currency text default null,
  p_amount_refunded integer default null,
  p_dispute_id text default null,
  p_dispute_amount integer default null,
  p_dispute_status text default null
) returns table (outcome text, purchase jsonb, duplicate boolean)
language plpgsql volatile security definer set search_path = '' as $$
declare v_outcome text;
  v_purchase_id uuid;
  v_existing public.stripe_events;
  v_facts jsonb;
begin
  if p_event_id is null or length(p_event_id) not between 1 and 255 then
    raise exception using errcode = 'WN422', message = 'event id must be 1-255 characters';
  end if;
  if p_type is null or length(p_type) not between 1 and 255 then
    raise exception using errcode = 'WN422', message = 'event type must be 1-255 characters';
  end if;
  if p_dispute_status is not null and p_dispute_status not in ('open', 'won', 'lost') then
    raise exception using errcode = 'WN422', message = 'dispute status must be open, won or lost';
  end if;
  v_facts := jsonb_strip_nulls(jsonb_build_object(
    'payment_status', p_payment_status, 'amount', p_amount, 'currency', p_currency,
    'amount_refunded', p_amount_refunded, 'dispute_id', p_dispute_id,
    'dispute_amount', p_dispute_amount, 'dispute_status', p_dispute_status));

  insert into public.stripe_events (id, type, purchase_id, payment_intent, outcome, facts)
  values (p_event_id, p_type, null, p_payment_intent, 'received', v_facts)
  on conflict (id) do nothing;
  if not found then
    select * into v_existing from public.stripe_events e where e.id = p_event_id;
    return query
      select v_existing.outcome,
             (select to_jsonb(p) from public.purchases p where p.id = v_existing.purchase_id),
             true;
    return;
  end if;

  -- Our purchase: named by the event, else found by its payment.
  select p.id into v_purchase_id from public.purchases p where p.id = p_purchase_id;
  if v_purchase_id is null and p_payment_intent is not null then
    select p.id into v_purchase_id from public.purchases p
     where p.payment_intent = p_payment_intent
     order by p.created_at limit 1;
  end if;

  if p_type in ('checkout.session.completed', 'checkout.session.async_payment_succeeded',
                'checkout.session.async_payment_failed', 'checkout.session.expired') then
    if v_purchase_id is null then
      v_outcome := case when p_purchase_id is null then 'ignored' else 'unknown_purchase' end;
    else
      v_outcome := private.settle_checkout(
        v_purchase_id,
        case p_type
          when 'checkout.session.completed' then
            case when p_payment_status = 'paid' then 'paid' else 'unpaid' end
          when 'checkout.session.async_payment_succeeded' then 'paid'
          when 'checkout.session.async_payment_failed' then 'failed'
          else 'expired'
        end,
        p_payment_intent, p_amount, p_currency);
    end if;
  elsif p_type in ('charge.refunded', 'charge.dispute.created', 'charge.dispute.closed') then
    if v_purchase_id is null then
      -- Kept (with its facts) until the payment it names is known; no payment named: not ours.
      v_outcome := case when p_payment_intent is null then 'ignored' else 'unmatched' end;
    else
      -- Lock the purchase first: the same order as settle_checkout (purchase, then user).
      perform private.lock_purchase(v_purchase_id);
      perform private.record_reversal(
        v_purchase_id, p_amount_refunded, p_dispute_id, p_dispute_amount, p_dispute_status);
      v_outcome := 'reversal_recorded';
    end if;
  else
    v_outcome := 'ignored';
  end if;

  update public.stripe_events e
     set outcome = v_outcome, purchase_id = v_purchase_id,
         applied_at = case when v_outcome = 'unmatched' then null else now() end
   where e.id = p_event_id;
  return query
    select v_outcome, (select to_jsonb(p) from public.purchases p where p.id = v_purchase_id), false;
end
$$;

comment on function public.apply_stripe_event(
  text, text, uuid, text, text, integer, text, integer, text, integer, text
) is 'Apply one verified Stripe event exactly once (recorded by its id in the same transaction).';
