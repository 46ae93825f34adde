-- claim_pending_copies: Replicate deletes API outputs an hour after they are made, so each
-- completed generation's video is copied into our storage (set_video_path records it). This
-- hands the sweeper the copies worth another try: completed, not yet kept, still within the
-- provider's retention, fewer than p_max_attempts tries, and free: no claim holds it (a copy
-- under way, the webhook's included, holds copy_retry_at past its time limit) and a failed try
-- waited its delay; one never tried waits p_retry_after_s after completion, which leaves the
-- webhook's copy time to claim it. Each claim lasts p_lease_s. SKIP LOCKED keeps overlapping
-- sweepers apart.
-- The old signature carried defaults, which create or replace cannot take away.
drop function if exists public.claim_pending_copies(integer, integer, integer, integer);
create or replace function public.claim_pending_copies(
  p_limit integer, p_retry_after_s integer, p_max_age_s integer, p_max_attempts integer,
  p_lease_s integer
) returns table (generation jsonb)
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform private.require_between('limit', p_limit, 1, 1000);
  perform private.require_between('lease_s', p_lease_s, 1, 86400);
  return query
  with picked as (
    select g.id from public.generations g
     where g.status = 'completed'
       and g.video_path is null
       and g.video_url is not null
       and g.completed_at > now() - make_interval(secs => p_max_age_s)
       and g.copy_attempts < p_max_attempts
       and coalesce(g.copy_retry_at, g.completed_at + make_interval(secs => p_retry_after_s))
           <= now()
     order by g.completed_at
     limit p_limit
     for no key update skip locked
  )
  update public.generations g
     set copy_claimed_at = now(), copy_attempts = g.copy_attempts + 1,
         copy_retry_at = now() + make_interval(secs => p_lease_s)
    from picked
   where g.id = picked.id
  returning to_jsonb(g.*);
end
$$;

comment on function public.claim_pending_copies(integer, integer, integer, integer, integer) is
  'Claim up to p_limit completed generations whose video is not copied yet (sweeper).';
