-- private.lift_payment_hold: lift a hold that payments placed once nothing is outstanding any
-- more (no credits owed, no dispute open or lost). Holds placed for other reasons stay.
create or replace function private.lift_payment_hold(p_user_id uuid, p_why text)
returns boolean
language plpgsql volatile security definer set search_path = '' as $$
begin
  if exists (
    select 1 from public.purchases p
     where p.user_id = p_user_id
       and (p.credits_owed > 0 or p.dispute_status in ('open', 'lost'))
  ) then
    return false;
  end if;
  update public.users
     set held_at = null, hold_lifted_at = now(), hold_lift_reason = p_why, updated_at = now()
   where id = p_user_id
     and held_at is not null
     and hold_reason = any (private.payment_hold_reasons());
  return found;
end
$$;

comment on function private.lift_payment_hold(uuid, text) is
  'Lift a payment hold when the user owes nothing and has no open or lost dispute.';
