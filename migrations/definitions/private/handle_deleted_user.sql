-- private.handle_deleted_user: the auth user is gone (our account deletion, or an operator in
-- the Supabase dashboard): forget the person, keep the books. Stored files are removed by the
-- reconciliation pass (the rows still name them until it does).
create or replace function private.handle_deleted_user()
returns trigger
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform private.forget_user(old.id, 'Account deleted');
  return old;
end
$$;
