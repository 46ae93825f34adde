-- public.apply_unmatched_stripe_events: the reconciliation pass's sweep of refunds and disputes
-- that arrived while the payment they name was being recorded by a concurrent transaction
-- (neither saw the other). Purchases are locked with SKIP LOCKED: overlapping passes never
-- work the same one. Returns how many events were applied.
drop function if exists public.apply_unmatched_stripe_events(integer);
create or replace function public.apply_unmatched_stripe_events(p_limit integer)
returns table (applied integer)
language plpgsql volatile security definer set search_path = '' as $$
declare v_id uuid;
  v_count integer := 0;
begin
  perform private.require_between('limit', p_limit, 1, 1000);
  for v_id in
    select p.id from public.purchases p
     where p.payment_intent in (
       select e.payment_intent from public.stripe_events e
        where e.outcome = 'unmatched' and e.payment_intent is not null)
     order by p.created_at
     limit p_limit
     for no key update skip locked
  loop
    v_count := v_count + private.apply_unmatched_events(v_id);
  end loop;
  return query select v_count;
end
$$;

comment on function public.apply_unmatched_stripe_events(integer) is
  'Apply refund/dispute events kept as unmatched whose payment is now known.';
