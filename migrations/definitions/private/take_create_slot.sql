-- private.take_create_slot: the per-user rate limit on everything that creates or charges
-- (create_generation now; the checkout's create-purchase after payments land).
--
-- At most p_per_minute slots per user in any rolling minute, held in the database so every
-- container shares it. Atomic: the user's row lock serializes one user's slots (create_generation
-- already holds it; another caller takes it here). A refused call takes no slot, and since it
-- raises, the caller's transaction charges and creates nothing either.
--   WN430 rate limited   DETAIL: {"limit": n, "retry_after_s": n}
create or replace function private.take_create_slot(p_user_id uuid, p_per_minute integer)
returns void
language plpgsql volatile security definer set search_path = '' as $$
declare v_count integer;
  v_oldest timestamptz;
begin
  if p_per_minute is null or p_per_minute < 1 then
    raise exception using errcode = 'WN422', message = 'per_minute must be at least 1';
  end if;
  perform 1 from public.users u where u.id = p_user_id for no key update;
  delete from private.create_slots s
   where s.user_id = p_user_id and s.taken_at <= now() - interval '1 minute';
  select count(*), min(s.taken_at) into v_count, v_oldest
    from private.create_slots s where s.user_id = p_user_id;
  if v_count >= p_per_minute then
    raise exception using errcode = 'WN430', message = 'rate limited',
      detail = json_build_object(
        'limit', p_per_minute,
        'retry_after_s',
        greatest(1, ceil(extract(epoch from v_oldest + interval '1 minute' - now())))::integer
      )::text;
  end if;
  insert into private.create_slots (user_id, taken_at) values (p_user_id, now());
end
$$;

comment on function private.take_create_slot(uuid, integer) is
  'Take one of the user''s p_per_minute create slots of the rolling minute, or raise WN430.';
