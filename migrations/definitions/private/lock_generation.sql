-- private.lock_generation: lock a generation's row and return it (WN404 when there is none, or
-- when p_user_id is given and is not its owner).
--
-- FOR NO KEY UPDATE, not FOR UPDATE: a retry of this generation inserts a row whose retry_of
-- points at it, and that foreign-key check takes FOR KEY SHARE on it while the retry already
-- holds its user. FOR UPDATE would block that check, so a refunding webhook batch (this
-- generation, then its user) and the retry (the user, then this generation) could deadlock.
-- No function changes a generation's id, so the weaker lock is enough.
create or replace function private.lock_generation(p_generation_id uuid, p_user_id uuid)
returns public.generations
language plpgsql security definer set search_path = '' as $$
declare v_row public.generations;
begin
  select * into v_row from public.generations g
   where g.id = p_generation_id and (p_user_id is null or g.user_id = p_user_id)
  for no key update;
  perform private.require_found(found, 'generation');
  return v_row;
end
$$;

comment on function private.lock_generation is
  'Lock a generation (FOR NO KEY UPDATE) and return it; WN404 when missing or not the user''s.';
