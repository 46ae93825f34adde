-- Confirmation (email or phone), or an anonymous user becoming permanent: the signup bonus.
-- (Written as pg_get_triggerdef prints it, parentheses included, so the catalog check matches.)
create or replace trigger on_auth_user_confirmed
  after update of email_confirmed_at, phone_confirmed_at, is_anonymous on auth.users
  for each row
  when (((new.email_confirmed_at is not null) or (new.phone_confirmed_at is not null)))
  execute function private.handle_user_confirmed();
