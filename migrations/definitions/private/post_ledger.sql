-- private.post_ledger: append one ledger entry and move the balance with it, in the caller's
-- transaction, so users.credits = SUM(credit_transactions.amount) holds by construction.
-- Purchase entries (grant, reversal, restore) also name their purchase and the refund/dispute
-- state they answer (p_reference), which the unique partial indexes of 0010 check.
drop function if exists private.post_ledger(uuid, integer, text, uuid, text);
create or replace function private.post_ledger(
  p_user_id uuid, p_amount integer, p_type text, p_generation_id uuid, p_description text,
  p_purchase_id uuid default null, p_reference text default null
) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare v_balance integer;
begin
  update public.users
     set credits = credits + p_amount, updated_at = now()
   where id = p_user_id
  returning credits into v_balance;
  perform private.require_found(found, 'user');
  insert into public.credit_transactions (
    user_id, amount, type, generation_id, description, purchase_id, reference
  ) values (
    p_user_id, p_amount, p_type, p_generation_id, p_description, p_purchase_id, p_reference);
  return v_balance;
end
$$;

comment on function private.post_ledger is
  'Append a ledger entry and apply it to users.credits; the CHECK keeps credits >= 0.';
