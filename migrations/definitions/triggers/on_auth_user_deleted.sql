-- Account deletion: the users row stays as a tombstone without personal data.
create or replace trigger on_auth_user_deleted
  after delete on auth.users
  for each row execute function private.handle_deleted_user();
