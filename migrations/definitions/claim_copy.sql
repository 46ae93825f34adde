-- claim_copy: the webhook's copy of one completed generation claims its row first, so the
-- sweeper (claim_pending_copies) never starts a second copy of the same video while this one
-- streams. Claimed only when the video still needs copying, tries remain, and no other claim
-- holds it; the claim lasts p_lease_s (more than a copy may take).
create or replace function public.claim_copy(
  p_generation_id uuid, p_lease_s integer, p_max_attempts integer
) returns table (generation jsonb, claimed boolean)
language plpgsql volatile security definer set search_path = '' as $$
declare v_row public.generations;
begin
  perform private.require_between('lease_s', p_lease_s, 1, 86400);
  v_row := private.lock_generation(p_generation_id, null);
  if v_row.status <> 'completed' or v_row.video_path is not null or v_row.video_url is null
     or v_row.copy_attempts >= p_max_attempts
     or (v_row.copy_retry_at is not null and v_row.copy_retry_at > now()) then
    return query select to_jsonb(v_row), false;
    return;
  end if;
  update public.generations g
     set copy_claimed_at = now(), copy_attempts = g.copy_attempts + 1,
         copy_retry_at = now() + make_interval(secs => p_lease_s)
   where g.id = p_generation_id
  returning * into v_row;
  return query select to_jsonb(v_row), true;
end
$$;

comment on function public.claim_copy is
  'Claim one completed generation''s video copy for p_lease_s; false when another holds it.';
revoke all on function public.claim_copy(uuid, integer, integer)
  from public, anon, authenticated;
grant execute on function public.claim_copy(uuid, integer, integer) to service_role;
