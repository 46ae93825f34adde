-- private.claim_poll: the status read's polling claim, the one rule for read_generation and
-- read_generations. It stamps last_polled_at (and counts the poll) of the owner's generation
-- when the caller should ask the provider about it: running, has a prediction id, nothing heard
-- for p_poll_after_s, fewer than p_max_polls polls so far. Every condition is checked under the
-- row lock, so of many tabs asking at once only one wins; the stamp makes the next claim wait
-- another interval. Returns the claimed row, or null (all fields) when there is no claim.
create or replace function private.claim_poll(
  p_generation_id uuid, p_user_id uuid, p_poll_after_s integer, p_max_polls integer
) returns public.generations
language plpgsql volatile security definer set search_path = '' as $$
declare v_claimed public.generations;
begin
  update public.generations g
     set last_polled_at = now(), poll_attempts = g.poll_attempts + 1
   where g.id = p_generation_id
     and g.user_id = p_user_id
     and g.deleted_at is null
     and g.status in ('queued', 'processing')
     and g.job_id is not null
     and g.poll_attempts < p_max_polls
     and greatest(g.updated_at, g.last_polled_at) <= now() - make_interval(secs => p_poll_after_s)
  returning g.* into v_claimed;
  return v_claimed;
end
$$;

comment on function private.claim_poll is
  'Claim the poll of an overdue running generation for its owner; the row, or null.';
