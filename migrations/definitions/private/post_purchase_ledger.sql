-- private.post_purchase_ledger: append one purchase-related ledger entry and move the balance
-- with it (the purchase twin of private.post_ledger: same rule, plus purchase_id and reference,
-- which the unique partial indexes of 0010 check).
create or replace function private.post_purchase_ledger(
  p_user_id uuid,
  p_amount integer,
  p_type text,
  p_purchase_id uuid,
  p_reference text,
  p_description text
) returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_balance integer;
begin
  update public.users
     set credits = credits + p_amount, updated_at = now()
   where id = p_user_id
  returning credits into v_balance;
  if not found then
    raise exception using errcode = 'WN404', message = 'user not found',
      detail = json_build_object('entity', 'user')::text;
  end if;
  insert into public.credit_transactions (user_id, amount, type, purchase_id, reference, description)
  values (p_user_id, p_amount, p_type, p_purchase_id, p_reference, p_description);
  return v_balance;
end
$$;

comment on function private.post_purchase_ledger(uuid, integer, text, uuid, text, text) is
  'Append a purchase ledger entry (grant, reversal, restore) and apply it to users.credits.';
revoke all on function private.post_purchase_ledger(uuid, integer, text, uuid, text, text)
  from public, anon, authenticated, service_role;
