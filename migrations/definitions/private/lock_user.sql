-- private.lock_user: lock a user's row and return its balance (WN404 when there is none).
--
-- FOR NO KEY UPDATE, like the UPDATE of credits it precedes: it serializes this user's balance
-- changes without blocking the foreign-key checks (FOR KEY SHARE) of rows that point at the
-- user, so inserting a generation or a ledger entry for them never waits on it.
create or replace function private.lock_user(p_user_id uuid, out balance integer)
language plpgsql security definer set search_path = '' as $$
begin
  select u.credits into balance from public.users u where u.id = p_user_id for no key update;
  perform private.require_found(found, 'user');
end
$$;

comment on function private.lock_user is
  'Lock a user (FOR NO KEY UPDATE) and return the balance; WN404 when there is no such user.';
