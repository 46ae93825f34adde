-- private.handle_new_user: every new auth user gets a users row (0 credits) in the signup
-- transaction; the bonus only if the user arrives confirmed (else at confirmation).
create or replace function private.handle_new_user()
returns trigger
language plpgsql volatile security definer set search_path = '' as $$
begin
  insert into public.users (id, email) values (new.id, new.email);
  perform private.grant_signup_bonus(
    new.id, new.is_anonymous, coalesce(new.email_confirmed_at, new.phone_confirmed_at));
  return new;
end
$$;

comment on function private.handle_new_user is
  'Trigger function: create the public.users row; the signup bonus if already confirmed.';
