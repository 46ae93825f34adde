-- =============================================================================================
-- 0006 Output copies: keeping every video.
--
-- Replicate deletes API outputs an hour after they are made, so each completed generation's
-- video is copied into our storage (set_video_path records it). A copy is pending while
-- status = 'completed' and video_path is null; these columns say how the attempts went, and
-- claim_pending_copies hands the sweeper the ones worth another try.
-- =============================================================================================

alter table public.generations
  add column copy_attempts integer not null default 0,
  add column copy_claimed_at timestamptz,
  add column copy_error text;

comment on column public.generations.copy_attempts is 'How many times we tried to copy the video.';
comment on column public.generations.copy_claimed_at is 'When a copy attempt last started.';
comment on column public.generations.copy_error is 'Why the last copy attempt failed.';

create index generations_pending_copy_idx on public.generations (completed_at)
  where status = 'completed' and video_path is null;

-- ---------------------------------------------------------------------------------------------
-- claim_pending_copies: completed, not yet kept, still within the provider's retention, not
-- tried in the last p_retry_after_s seconds, fewer than p_max_attempts tries. SKIP LOCKED keeps
-- overlapping sweepers apart.
-- ---------------------------------------------------------------------------------------------
create function public.claim_pending_copies(
  p_limit integer default 50,
  p_retry_after_s integer default 60,
  p_max_age_s integer default 3600,
  p_max_attempts integer default 5
) returns table (generation jsonb)
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  if p_limit is null or p_limit not between 1 and 1000 then
    raise exception using errcode = 'WN422', message = 'limit must be 1-1000';
  end if;
  return query
  with picked as (
    select g.id from public.generations g
     where g.status = 'completed'
       and g.video_path is null
       and g.video_url is not null
       and g.completed_at > now() - make_interval(secs => p_max_age_s)
       and g.copy_attempts < p_max_attempts
       and greatest(g.completed_at, g.copy_claimed_at)
           <= now() - make_interval(secs => p_retry_after_s)
     order by g.completed_at
     limit p_limit
     for update skip locked
  )
  update public.generations g
     set copy_claimed_at = now(), copy_attempts = g.copy_attempts + 1
    from picked
   where g.id = picked.id
  returning to_jsonb(g.*);
end
$$;

-- ---------------------------------------------------------------------------------------------
-- record_copy_failure: remember why; a failure that cannot get better (the provider deleted
-- the file, it is not a video, it is too big) ends the attempts.
-- ---------------------------------------------------------------------------------------------
create function public.record_copy_failure(
  p_generation_id uuid,
  p_error text,
  p_retryable boolean default true
) returns table (generation jsonb)
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_row public.generations;
begin
  update public.generations g
     set copy_error = left(coalesce(p_error, 'copy failed'), 1000),
         copy_attempts = case when p_retryable then g.copy_attempts else 1000000 end
   where g.id = p_generation_id
  returning g.* into v_row;
  if not found then
    perform private.raise_generation_not_found();
  end if;
  return query select to_jsonb(v_row);
end
$$;

revoke execute on function
  public.claim_pending_copies(integer, integer, integer, integer),
  public.record_copy_failure(uuid, text, boolean)
from public, anon, authenticated;
grant execute on function
  public.claim_pending_copies(integer, integer, integer, integer),
  public.record_copy_failure(uuid, text, boolean)
to service_role;
