-- claim_copy: the webhook's copy of one completed generation claims its row first, so the
-- sweeper (claim_pending_copies) never starts a second copy of the same video while this one
-- streams. Claimed only when the video still needs copying, tries remain, and no other claim
-- holds it; the claim lasts p_lease_s (more than a copy may take).
create or replace function public.claim_copy(
  p_generation_id uuid, p_lease_s integer, p_max_attempts integer
) returns table (generation jsonb, claimed boolean)
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform private.require_between('lease_s', p_lease_s, 1, 86400);
  perform private.lock_generation(p_generation_id, null);
  -- The update's condition is the claim's: otherwise the row comes back as it is (FOUND is false).
  update public.generations g
     set copy_claimed_at = now(), copy_attempts = g.copy_attempts + 1,
         copy_retry_at = now() + make_interval(secs => p_lease_s)
   where g.id = p_generation_id
     and g.status = 'completed' and g.video_path is null and g.video_url is not null
     and g.copy_attempts < p_max_attempts
     and (g.copy_retry_at is null or g.copy_retry_at <= now());
  return query select to_jsonb(g.*), found from public.generations g where g.id = p_generation_id;
end
$$;

comment on function public.claim_copy is
  'Claim one completed generation''s video copy for p_lease_s; false when another holds it.';
