-- claim_stale_generations: live rows nothing was heard of for p_stale_after_s seconds, oldest
-- first; SKIP LOCKED and the last_polled_at stamp keep overlapping sweepers off the same rows.
-- The old signature carried defaults, which create or replace cannot take away.
drop function if exists public.claim_stale_generations(integer, integer);
create or replace function public.claim_stale_generations(
  p_limit integer, p_stale_after_s integer
) returns table (generation jsonb)
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform private.require_between('limit', p_limit, 1, 10000);
  perform private.require_between('stale_after_s', p_stale_after_s, 0, null);
  return query
  with picked as (
    select g.id from public.generations g
     where g.status in ('queued', 'processing')
       and greatest(g.updated_at, g.last_polled_at)
           <= now() - make_interval(secs => p_stale_after_s)
     order by greatest(g.updated_at, g.last_polled_at)
     limit p_limit
     for no key update skip locked
  )
  update public.generations g
     set last_polled_at = now(), poll_attempts = g.poll_attempts + 1
    from picked
   where g.id = picked.id
  returning to_jsonb(g.*);
end
$$;

comment on function public.claim_stale_generations(integer, integer) is
  'Claim up to p_limit live generations not heard of for p_stale_after_s seconds (sweeper).';
