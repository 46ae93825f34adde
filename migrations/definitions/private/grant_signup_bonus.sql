-- private.grant_signup_bonus: the welcome credits, once, to a confirmed non-anonymous user.
--
-- Called by the auth.users triggers at insert (a user who arrives confirmed) and when an update
-- confirms the email or phone. The amount is the SIGNUP_BONUS_CREDITS setting, kept in
-- private.guardrail_config (a trigger takes no arguments). Once: the user's row lock orders
-- concurrent confirmations and a unique index backs the check.
create or replace function private.grant_signup_bonus(
  p_user_id uuid,
  p_is_anonymous boolean,
  p_confirmed_at timestamptz
) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare v_amount integer;
begin
  if coalesce(p_is_anonymous, false) or p_confirmed_at is null then
    return;
  end if;
  perform 1 from public.users u where u.id = p_user_id and u.deleted_at is null for no key update;
  if not found then
    return;
  end if;
  if exists (
    select 1 from public.credit_transactions t
     where t.user_id = p_user_id and t.type = 'signup_bonus'
  ) then
    return;
  end if;
  select c.signup_bonus_credits into v_amount from private.guardrail_config c;
  if coalesce(v_amount, 0) = 0 then
    return;
  end if;
  perform private.post_ledger(p_user_id, v_amount, 'signup_bonus', null, 'Welcome bonus');
end
$$;

comment on function private.grant_signup_bonus(uuid, boolean, timestamptz) is
  'Grant the configured signup bonus once, only to a confirmed, non-anonymous user.';
