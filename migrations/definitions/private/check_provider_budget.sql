-- private.check_provider_budget: the global guard on the operator's provider bill.
--
-- When the estimated provider spend of the last 24 hours (generations whose cost was recorded,
-- by completed_at) reaches p_budget_usd, raise WN503 with the seconds until enough of it ages
-- out of the window. A null budget means no guard.
--   WN503 budget exhausted   DETAIL: {"retry_after_s": n}
create or replace function private.check_provider_budget(p_budget_usd double precision)
returns void
language plpgsql stable security definer set search_path = '' as $$
declare v_spend numeric;
  v_retry_s integer;
begin
  if p_budget_usd is null then
    return;
  end if;
  select coalesce(sum(g.provider_cost_usd), 0) into v_spend
    from public.generations g
   where g.provider_cost_usd is not null and g.completed_at > now() - interval '24 hours';
  if v_spend < p_budget_usd then
    return;
  end if;
  -- The first moment the window's sum falls under the budget: when the oldest rows leave it.
  select ceil(extract(epoch from s.completed_at + interval '24 hours' - now()))::integer
    into v_retry_s
    from (
      select g.completed_at,
             v_spend - sum(g.provider_cost_usd) over (order by g.completed_at, g.id) as remaining
        from public.generations g
       where g.provider_cost_usd is not null and g.completed_at > now() - interval '24 hours'
    ) s
   where s.remaining < p_budget_usd
   order by s.completed_at
   limit 1;
  raise exception using errcode = 'WN503', message = 'provider budget exhausted',
    detail = json_build_object('retry_after_s', greatest(1, coalesce(v_retry_s, 60)))::text;
end
$$;

comment on function private.check_provider_budget(double precision) is
  'Raise WN503 when the last 24 h of estimated provider spend reached p_budget_usd (null: no guard).';
