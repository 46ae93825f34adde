-- private.assert_not_held: refuse anything that creates or charges for an account on hold.
-- Called by create_purchase and create_generation, inside their transaction (after the user's
-- row lock, so a hold placed concurrently is seen). Reads and webhooks are never refused.
create or replace function private.assert_not_held(p_user_id uuid)
returns void
language plpgsql stable security definer set search_path = '' as $$
declare v_held_at timestamptz;
  v_reason text;
begin
  select u.held_at, u.hold_reason into v_held_at, v_reason
    from public.users u where u.id = p_user_id;
  if v_held_at is not null then
    raise exception using errcode = 'WN403', message = 'account on hold',
      detail = json_build_object('reason', coalesce(v_reason, 'held by the operator'))::text;
  end if;
end
$$;

comment on function private.assert_not_held(uuid) is
  'Raise WN403 (account_on_hold) when the user is held; DETAIL {"reason": text}.';
