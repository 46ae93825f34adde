-- private.settle_reversals: bring the credits taken back for a purchase in line with what was
-- refunded or disputed. The caller holds the purchase's row lock.
--
-- State-based, not event-based, so the end state does not depend on the order of events:
--   reversed amount = least(amount, amount_refunded + dispute_amount while open or lost)
--   target credits  = floor(credits * reversed amount / amount)   (0 unless the purchase is paid)
-- A rise takes credits from the balance, never below 0: the rest is owed and holds the account.
-- A fall (a dispute won) forgives what is owed first, then gives back what was taken.
-- Each ledger entry's reference names the state it reaches (r<refunded>/d<dispute status>);
-- states only move forward, so the unique index allows one entry per state.
-- Returns the signed change of the balance.
create or replace function private.settle_reversals(p_purchase_id uuid)
returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare v public.purchases;
  v_reversed_amount integer;
  v_target integer;
  v_delta integer;
  v_balance integer;
  v_take integer;
  v_owe integer;
  v_forgive integer;
  v_give integer;
  v_reference text;
  v_moved integer := 0;
begin
  select * into v from public.purchases p where p.id = p_purchase_id;
  if not found or v.status <> 'paid' then
    return 0;  -- nothing was granted, so nothing is taken back (yet)
  end if;
  v_reversed_amount := least(
    v.amount,
    v.amount_refunded
      + case when v.dispute_status in ('open', 'lost') then v.dispute_amount else 0 end
  );
  v_target := (v.credits::bigint * v_reversed_amount / v.amount)::integer;
  v_delta := v_target - v.credits_reversed;
  if v_delta = 0 then
    return 0;
  end if;
  v_reference := 'r' || v.amount_refunded || '/d' || coalesce(v.dispute_status, 'none');

  if v_delta > 0 then
    v_take := 0;
    if v.user_id is not null then
      v_balance := private.lock_user(v.user_id);
      v_take := least(v_delta, greatest(v_balance, 0));
      if v_take > 0 then
        perform private.post_ledger(
          v.user_id, -v_take, 'purchase_reversal', null,
          format('Credits taken back: %s of %s %s refunded or disputed',
                 v_reversed_amount, v.amount, upper(v.currency)), v.id, v_reference);
        v_moved := -v_take;
      end if;
    end if;
    v_owe := v_delta - v_take;
    update public.purchases
       set credits_reversed = v_target, credits_owed = credits_owed + v_owe, updated_at = now()
     where id = v.id;
    if v_owe > 0 and v.user_id is not null then
      perform private.hold_for_payment(v.user_id, (private.payment_hold_reasons())[2]);
    end if;
  else
    v_forgive := least(-v_delta, v.credits_owed);
    v_give := -v_delta - v_forgive;
    if v_give > 0 and v.user_id is not null then
      perform private.post_ledger(
        v.user_id, v_give, 'purchase_restore', null,
        'Credits given back: the dispute was decided in your favour', v.id, v_reference);
      v_moved := v_give;
    end if;
    update public.purchases
       set credits_reversed = v_target, credits_owed = credits_owed - v_forgive, updated_at = now()
     where id = v.id;
  end if;
  return v_moved;
end
$$;

comment on function private.settle_reversals(uuid) is
  'Take back (or give back) a paid purchase''s credits in proportion to what is refunded or '
  'disputed; never below a zero balance (the rest is owed and holds the account).';
