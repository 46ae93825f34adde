-- private.record_reversal: what Stripe says was refunded or disputed on a purchase's charge,
-- then the credits moved to match. The caller holds the purchase's row lock.
-- Facts only move forward (amount_refunded is cumulative: the larger wins; a dispute goes
-- none -> open -> won | lost, never back), so replays and reordering end in the same state.
-- Returns the signed change of the balance.
create or replace function private.record_reversal(
  p_purchase_id uuid,
  p_amount_refunded integer,
  p_dispute_id text,
  p_dispute_amount integer,
  p_dispute_status text
) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare v_before public.purchases;
  v_after public.purchases;
  v_moved integer;
begin
  select * into v_before from public.purchases p where p.id = p_purchase_id;
  if not found then
    return 0;
  end if;
  update public.purchases p
     set amount_refunded = least(p.amount, greatest(p.amount_refunded, coalesce(p_amount_refunded, 0))),
         dispute_id = coalesce(p.dispute_id, p_dispute_id),
         dispute_amount = case when p_dispute_status is null then p.dispute_amount
                               else least(p.amount, greatest(p.dispute_amount,
                                                             coalesce(p_dispute_amount, 0))) end,
         dispute_status = case
           when p_dispute_status is null then p.dispute_status
           when p.dispute_status is null then p_dispute_status
           when p.dispute_status = 'open' and p_dispute_status in ('won', 'lost') then p_dispute_status
           else p.dispute_status
         end,
         updated_at = now()
   where p.id = p_purchase_id
  returning * into v_after;

  v_moved := private.settle_reversals(p_purchase_id);
  if v_after.user_id is not null
     and v_after.dispute_status is distinct from v_before.dispute_status then
    if v_after.dispute_status in ('open', 'lost') then
      perform private.hold_for_payment(v_after.user_id, (private.payment_hold_reasons())[1]);
    elsif v_after.dispute_status = 'won' then
      perform private.lift_payment_hold(v_after.user_id, 'the dispute was won');
    end if;
  end if;
  return v_moved;
end
$$;

comment on function private.record_reversal(uuid, integer, text, integer, text) is
  'Record a refund or dispute on a purchase (forward only) and move credits to match.';
