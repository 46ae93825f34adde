-- private.handle_new_user: every new auth user gets a users row and the signup bonus, in the
-- signup transaction (trigger on_auth_user_created).
create or replace function private.handle_new_user()
returns trigger
language plpgsql volatile security definer set search_path = '' as $$
begin
  insert into public.users (id, email) values (new.id, new.email);
  perform private.post_ledger(new.id, 100, 'signup_bonus', null, 'Welcome bonus');
  return new;
end
$$;

comment on function private.handle_new_user is
  'Trigger function: create the public.users row and grant the signup bonus.';
revoke all on function private.handle_new_user() from public, anon, authenticated, service_role;
