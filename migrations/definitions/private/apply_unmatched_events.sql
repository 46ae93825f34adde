-- private.apply_unmatched_events: refunds and disputes that named only a payment not known
-- when they arrived, applied to the purchase that now carries that payment. The caller holds
-- the purchase's row lock. Returns how many events were applied.
create or replace function private.apply_unmatched_events(p_purchase_id uuid)
returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare v_payment_intent text;
  v_event record;
  v_count integer := 0;
begin
  select p.payment_intent into v_payment_intent from public.purchases p where p.id = p_purchase_id;
  if v_payment_intent is null then
    return 0;
  end if;
  for v_event in
    select e.id, e.facts from public.stripe_events e
     where e.payment_intent = v_payment_intent and e.outcome = 'unmatched'
     order by e.received_at, e.id
     for no key update
  loop
    perform private.record_reversal(
      p_purchase_id,
      (v_event.facts ->> 'amount_refunded')::integer,
      v_event.facts ->> 'dispute_id',
      (v_event.facts ->> 'dispute_amount')::integer,
      v_event.facts ->> 'dispute_status');
    update public.stripe_events
       set outcome = 'applied_late', purchase_id = p_purchase_id, applied_at = now()
     where id = v_event.id;
    v_count := v_count + 1;
  end loop;
  return v_count;
end
$$;

comment on function private.apply_unmatched_events(uuid) is
  'Apply the unmatched refund/dispute events of a purchase''s payment, once each.';
