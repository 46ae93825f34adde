-- add_credits: purchases, bonuses and (possibly negative) adjustments.
create or replace function public.add_credits(
  p_user_id uuid, p_amount integer, p_type text default 'bonus', p_description text default null
) returns table (balance integer)
language plpgsql volatile security definer set search_path = '' as $$
declare v_balance integer;
begin
  if p_type is null or p_type not in ('purchase', 'bonus', 'adjustment') then
    raise exception using errcode = 'WN422',
      message = 'type must be purchase, bonus or adjustment';
  end if;
  if p_amount is null or p_amount = 0 or (p_amount < 0 and p_type <> 'adjustment') then
    raise exception using errcode = 'WN422',
      message = 'amount must be positive (only an adjustment may be negative)';
  end if;
  v_balance := private.lock_user(p_user_id);
  if v_balance + p_amount < 0 then
    raise exception using errcode = 'WN402', message = 'adjustment would make the balance negative',
      detail = json_build_object('balance', v_balance, 'required', -p_amount)::text;
  end if;
  return query select private.post_ledger(p_user_id, p_amount, p_type, null, p_description);
end
$$;

comment on function public.add_credits is 'Credit (or, for adjustments, debit) a user''s balance.';
