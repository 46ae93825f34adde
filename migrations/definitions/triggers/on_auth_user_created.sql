-- Signup: a new auth.users row creates its public.users row and the signup bonus.
create or replace trigger on_auth_user_created
  after insert on auth.users
  for each row execute function private.handle_new_user();
