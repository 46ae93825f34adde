-- private.handle_user_confirmed: an update of auth.users that confirms the email or phone (or
-- turns an anonymous user into a permanent one) grants the signup bonus, once.
create or replace function private.handle_user_confirmed()
returns trigger
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform private.grant_signup_bonus(
    new.id, new.is_anonymous, coalesce(new.email_confirmed_at, new.phone_confirmed_at));
  return new;
end
$$;
