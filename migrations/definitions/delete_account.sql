-- delete_account: the user deletes the account (DELETE /api/account). See private.forget_user;
-- the caller then cancels the returned predictions at the provider, removes the returned files,
-- calls release_media, and deletes the auth user (whose trigger finds nothing left to do).
create or replace function public.delete_account(p_user_id uuid)
returns table (paths jsonb, job_ids jsonb, generation_ids jsonb)
language plpgsql volatile security definer set search_path = '' as $$
declare v_forgotten jsonb;
begin
  perform private.require_found(
    exists (select 1 from public.users u where u.id = p_user_id), 'user');
  v_forgotten := private.forget_user(p_user_id, 'Account deleted');
  return query select v_forgotten -> 'paths', v_forgotten -> 'job_ids',
    v_forgotten -> 'generation_ids';
end
$$;

comment on function public.delete_account(uuid) is
  'Forget a user''s personal data (prompts, email; files to remove are returned), keep the '
  'ledger and purchases; live generations end canceled and refunded.';
