-- private.refund: give back a generation's deduction, at most once. Returns the amount (0 when
-- there is nothing to give back or it was already given back).
create or replace function private.refund(p_generation_id uuid, p_description text)
returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare v_deduction public.credit_transactions;
begin
  -- The deduction, unless it was given back already. The unique index on refunds makes a
  -- concurrent second refund impossible; checking first keeps the common replay path free of
  -- an error.
  select * into v_deduction from public.credit_transactions d
   where d.generation_id = p_generation_id and d.type = 'deduction'
     and not exists (
       select 1 from public.credit_transactions r
        where r.generation_id = p_generation_id and r.type = 'refund');
  if not found then
    return 0;
  end if;
  perform private.post_ledger(
    v_deduction.user_id, -v_deduction.amount, 'refund', p_generation_id, p_description);
  return -v_deduction.amount;
end
$$;

comment on function private.refund is
  'Refund a generation''s deduction once; returns the amount given back (0 when none).';
