-- public.claim_pending_purchases: the reconciliation pass's work list. Purchases still pending
-- p_older_than_s after they started (or after they were last checked) are stamped and
-- returned, oldest first; FOR NO KEY UPDATE SKIP LOCKED, so two passes never ask Stripe about the same
-- purchase, and the stamp spaces out the questions about one that stays pending.
create or replace function public.claim_pending_purchases(
  p_limit integer,
  p_older_than_s integer
) returns table (purchase jsonb)
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform private.require_between('limit', p_limit, 1, 1000);
  perform private.require_between('older_than_s', p_older_than_s, 0, null);
  return query
    with due as (
      select p.id from public.purchases p
       where p.status = 'pending'
         and coalesce(p.last_checked_at, p.created_at) < now() - make_interval(secs => p_older_than_s)
       order by coalesce(p.last_checked_at, p.created_at), p.id
       limit p_limit
       for no key update skip locked
    )
    update public.purchases p
       set last_checked_at = now(), check_attempts = p.check_attempts + 1
      from due
     where p.id = due.id
    returning to_jsonb(p);
end
$$;

comment on function public.claim_pending_purchases(integer, integer) is
  'Claim purchases pending for a while, for reconciliation (SKIP LOCKED; stamped).';
