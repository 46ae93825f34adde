-- deduct_credits: charge a user, optionally for a generation (at most once per generation).
create or replace function public.deduct_credits(
  p_user_id uuid, p_amount integer, p_generation_id uuid default null
) returns table (balance integer)
language plpgsql volatile security definer set search_path = '' as $$
declare v_balance integer;
begin
  if p_amount is null or p_amount <= 0 then
    raise exception using errcode = 'WN422', message = 'amount must be a positive integer';
  end if;
  v_balance := private.lock_user(p_user_id);
  -- Charging the same generation again is a no-op, not a second charge.
  if p_generation_id is not null and exists (
    select 1 from public.credit_transactions t
     where t.generation_id = p_generation_id and t.type = 'deduction'
  ) then
    return query select v_balance;
    return;
  end if;
  if v_balance < p_amount then
    raise exception using errcode = 'WN402', message = 'insufficient credits',
      detail = json_build_object('balance', v_balance, 'required', p_amount)::text;
  end if;
  return query select private.post_ledger(
    p_user_id, -p_amount, 'deduction', p_generation_id, 'Generation charge');
end
$$;

comment on function public.deduct_credits is
  'Charge p_amount credits; WN402 when the balance is short; idempotent per generation.';
