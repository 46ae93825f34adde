-- public.claim_pending_purchases: the reconciliation pass's work list. Purchases still pending
-- p_older_than_s after they started (or after they were last checked) are stamped and
-- returned, the oldest chosen first; FOR NO KEY UPDATE SKIP LOCKED, so two passes never ask
-- Stripe about the same purchase, and the stamp spaces out the questions about one that stays
-- pending.
create or replace function public.claim_pending_purchases(
  p_limit integer,
  p_older_than_s integer
) returns table (purchase jsonb)
language sql volatile security definer set search_path = '' as $$
  select private.require_between('limit', p_limit, 1, 1000);
  select private.require_between('older_than_s', p_older_than_s, 0, null);
  update public.purchases p
     set last_checked_at = now(), check_attempts = p.check_attempts + 1
   where p.id in (
     select d.id from public.purchases d
      where d.status = 'pending'
        and coalesce(d.last_checked_at, d.created_at) < now() - make_interval(secs => p_older_than_s)
      order by coalesce(d.last_checked_at, d.created_at), d.id
      limit p_limit
      for no key update skip locked)
  returning to_jsonb(p);
$$;

comment on function public.claim_pending_purchases(integer, integer) is
  'Claim purchases pending for a while, for reconciliation (SKIP LOCKED; stamped).';
