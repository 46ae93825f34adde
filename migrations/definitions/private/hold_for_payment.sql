-- private.hold_for_payment: put an account on hold because of a payment (a dispute opened or
-- lost, credits a refund could not take back). An existing hold keeps its reason.
create or replace function private.hold_for_payment(p_user_id uuid, p_reason text)
returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  update public.users
     set held_at = now(), hold_reason = p_reason, updated_at = now()
   where id = p_user_id and held_at is null;
end
$$;

comment on function private.hold_for_payment(uuid, text) is
  'Hold the account (no new generations or purchases) unless it is already held.';
