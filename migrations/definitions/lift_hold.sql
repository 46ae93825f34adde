-- public.lift_hold: an operator lifts a user's hold, saying why (wanctl hold lift). Credits
-- still owed stay recorded on their purchases. Returns whether the user was held.
create or replace function public.lift_hold(p_user_id uuid, p_reason text)
returns table (was_held boolean, previous_reason text)
language plpgsql volatile security definer set search_path = '' as $$
declare v_user public.users;
begin
  if p_reason is null or length(btrim(p_reason)) not between 1 and 500 then
    raise exception using errcode = 'WN422', message = 'a reason (1-500 characters) is required';
  end if;
  perform private.lock_user(p_user_id);
  select * into v_user from public.users u where u.id = p_user_id;
  if v_user.held_at is null then
    return query select false, null::text;
    return;
  end if;
  update public.users
     set held_at = null, hold_lifted_at = now(), hold_lift_reason = btrim(p_reason),
         updated_at = now()
   where id = p_user_id;
  return query select true, v_user.hold_reason;
end
$$;

comment on function public.lift_hold(uuid, text) is
  'Lift a user''s hold with the operator''s reason; reports whether it was held.';
