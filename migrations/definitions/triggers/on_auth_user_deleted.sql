-- Account deletion: the users row stays as a tombstone without personal data.
drop trigger if exists on_auth_user_deleted on auth.users;
create trigger on_auth_user_deleted
  after delete on auth.users
  for each row execute function private.handle_deleted_user();
