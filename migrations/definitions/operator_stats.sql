-- operator_stats: the operator's numbers (wanctl stats, GET /api/admin/stats), one call.
--
-- Over generations finished since p_since (completed_at): the original app's metrics, each
-- {"value", "target", "op", "met"} ("met" is null when there is nothing to measure):
--   success_rate          completed / (completed + failed); canceled is the user's choice   > target
--   avg/p95_completion_s  created -> completed, completed ones                               < target
--   webhook_delivery_rate share of provider outcomes (webhook, poll, sweep) that came by webhook > target
--   credit_accuracy       share of users, generations and purchases for which the ledger
--                         invariants hold                                                   = 1
-- plus refunds, credits deducted/refunded/spent/bought/taken back/granted (ledger rows since
-- p_since), estimated provider spend (and the last 24 h against p_daily_budget_usd, null = no
-- guard), revenue and margin:
--   revenue  purchases paid since p_since (paid_at), as they stand now: amount minus what was
--            refunded and minus disputes LOST (that money went back to the buyer, like a
--            refund); an open dispute still counts (shown as disputes_open: at risk). In USD
--            (minor units / 100), the unit of the provider spend; purchases in another
--            currency are listed in other_currencies (minor units) and left out of the value.
--   margin   revenue - estimated provider spend of the generations finished in the window, USD.
--            Stripe's fees are not known here and not subtracted.
create or replace function public.operator_stats(
  p_since timestamptz,
  p_success_target double precision,
  p_completion_target_s double precision,
  p_webhook_target double precision,
  p_daily_budget_usd double precision
) returns table (stats jsonb)
language plpgsql stable security definer set search_path = '' as $$
declare v_gen record;
  v_ledger record;
  v_sales record;
  v_other jsonb;
  v_bad_purchases integer;
  v_purchases integer;
  v_bad_users integer;
  v_users integer;
  v_bad_generations integer;
  v_generations integer;
  v_spend_24h numeric;
  v_success numeric;
  v_webhook numeric;
  v_accuracy numeric;
begin
  if p_since is null then
    raise exception using errcode = 'WN422', message = 'since is required';
  end if;

  select count(*) as finished,
         count(*) filter (where g.status = 'completed') as completed,
         count(*) filter (where g.status = 'failed') as failed,
         count(*) filter (where g.status = 'canceled') as canceled,
         count(*) filter (where g.finished_by = 'webhook') as by_webhook,
         count(*) filter (where g.finished_by = 'poll') as by_poll,
         count(*) filter (where g.finished_by = 'sweep') as by_sweep,
         count(*) filter (where g.finished_by = 'cancel') as by_cancel,
         count(*) filter (where g.finished_by = 'submit') as by_submit,
         avg(extract(epoch from g.completed_at - g.created_at))
           filter (where g.status = 'completed') as avg_s,
         percentile_cont(0.95) within group (order by extract(epoch from g.completed_at - g.created_at))
           filter (where g.status = 'completed') as p95_s,
         coalesce(sum(g.provider_cost_usd), 0) as spend_usd,
         coalesce(sum(g.predict_time_s), 0) as predict_s,
         count(*) filter (where g.media_expired_at is not null) as media_expired
    into v_gen
    from public.generations g
   where g.completed_at >= p_since;

  select coalesce(-sum(t.amount) filter (where t.type = 'deduction'), 0) as deducted,
         coalesce(sum(t.amount) filter (where t.type = 'refund'), 0) as refunded,
         count(*) filter (where t.type = 'refund') as refunds,
         coalesce(sum(t.amount) filter (where t.type = 'purchase'), 0) as bought,
         coalesce(-sum(t.amount) filter (
           where t.type in ('purchase_reversal', 'purchase_restore')), 0) as taken_back,
         coalesce(sum(t.amount) filter (where t.type in ('signup_bonus', 'bonus')), 0) as granted
    into v_ledger
    from public.credit_transactions t
   where t.created_at >= p_since;

  -- The invariants of DESIGN §3, over everyone (not just the window): accuracy is all or bust.
  select count(*), count(*) filter (where u.credits <> coalesce(l.total, 0) or u.credits < 0)
    into v_users, v_bad_users
    from public.users u
    left join (select t.user_id, sum(t.amount) as total
                 from public.credit_transactions t group by t.user_id) l on l.user_id = u.id;
  select count(*), count(*) filter (where
           c.deductions <> 1 or c.refunds > 1
           or (c.status = 'completed' and c.refunds > 0)
           or (c.status in ('failed', 'canceled') and c.refunds <> 1)
           or (c.status in ('queued', 'processing') and c.refunds <> 0))
    into v_generations, v_bad_generations
    from (select g.status,
                 count(t.id) filter (where t.type = 'deduction') as deductions,
                 count(t.id) filter (where t.type = 'refund') as refunds
            from public.generations g
            left join public.credit_transactions t on t.generation_id = g.id
           group by g.id, g.status) c;

  -- Purchases: each grant, claw-back and restore matches its purchase (as tests/support.py).
  select count(*), count(*) filter (where
           c.grants <> (c.status = 'paid')::int
           or c.taken <> c.credits_reversed - c.credits_owed or c.credits_reversed > c.credits)
    into v_purchases, v_bad_purchases
    from (select p.status, p.credits, p.credits_reversed, p.credits_owed,
                 count(t.id) filter (where t.type = 'purchase') as grants,
                 coalesce(-sum(t.amount) filter (
                   where t.type in ('purchase_reversal', 'purchase_restore')), 0) as taken
            from public.purchases p
            left join public.credit_transactions t on t.purchase_id = p.id
           group by p.id) c;

  -- Revenue: net = amount - refunded - lost dispute (capped, so the parts add up to amount).
  select count(*) as paid,
         coalesce(sum(s.credits), 0) as credits,
         coalesce(sum(s.amount) filter (where s.currency = 'usd'), 0) as gross,
         coalesce(sum(s.refunded) filter (where s.currency = 'usd'), 0) as refunded,
         coalesce(sum(s.lost) filter (where s.currency = 'usd'), 0) as lost,
         coalesce(sum(s.at_risk) filter (where s.currency = 'usd'), 0) as at_risk,
         coalesce(sum(s.amount - s.refunded - s.lost) filter (where s.currency = 'usd'), 0) as net
    into v_sales
    from (select p.currency, p.credits, p.amount, p.amount_refunded as refunded,
                 case when p.dispute_status = 'lost'
                      then least(p.dispute_amount, p.amount - p.amount_refunded) else 0 end as lost,
                 case when p.dispute_status = 'open'
                      then least(p.dispute_amount, p.amount - p.amount_refunded) else 0 end
                   as at_risk
            from public.purchases p
           where p.status = 'paid' and p.paid_at >= p_since) s;
  select coalesce(jsonb_object_agg(o.currency, o.net), '{}'::jsonb) into v_other
    from (select p.currency,
                 sum(p.amount - p.amount_refunded - case when p.dispute_status = 'lost'
                   then least(p.dispute_amount, p.amount - p.amount_refunded) else 0 end) as net
            from public.purchases p
           where p.status = 'paid' and p.paid_at >= p_since and p.currency <> 'usd'
           group by p.currency) o;

  select coalesce(sum(g.provider_cost_usd), 0) into v_spend_24h
    from public.generations g
   where g.provider_cost_usd is not null and g.completed_at > now() - interval '24 hours';

  v_success := round(v_gen.completed::numeric / nullif(v_gen.completed + v_gen.failed, 0), 4);
  v_webhook := round(
    v_gen.by_webhook::numeric / nullif(v_gen.by_webhook + v_gen.by_poll + v_gen.by_sweep, 0), 4);
  v_accuracy := round(
    (v_users + v_generations + v_purchases - v_bad_users - v_bad_generations - v_bad_purchases)
      ::numeric / nullif(v_users + v_generations + v_purchases, 0), 4);

  return query select jsonb_build_object(
    'since', p_since,
    'until', now(),
    'generations', jsonb_build_object(
      'finished', v_gen.finished, 'completed', v_gen.completed, 'failed', v_gen.failed,
      'canceled', v_gen.canceled, 'media_expired', v_gen.media_expired,
      'finished_by', jsonb_build_object(
        'webhook', v_gen.by_webhook, 'poll', v_gen.by_poll, 'sweep', v_gen.by_sweep,
        'cancel', v_gen.by_cancel, 'submit', v_gen.by_submit)),
    'success_rate', jsonb_build_object(
      'value', v_success, 'target', p_success_target, 'op', '>',
      'met', v_success > p_success_target),
    'avg_completion_s', jsonb_build_object(
      'value', round(v_gen.avg_s::numeric, 1), 'target', p_completion_target_s, 'op', '<',
      'met', v_gen.avg_s < p_completion_target_s),
    'p95_completion_s', jsonb_build_object(
      'value', round(v_gen.p95_s::numeric, 1), 'target', p_completion_target_s, 'op', '<',
      'met', v_gen.p95_s < p_completion_target_s),
    'webhook_delivery_rate', jsonb_build_object(
      'value', v_webhook, 'target', p_webhook_target, 'op', '>',
      'met', v_webhook > p_webhook_target),
    'credit_accuracy', jsonb_build_object(
      'value', v_accuracy, 'target', 1, 'op', '=', 'met', v_accuracy = 1,
      'users_checked', v_users, 'users_wrong', v_bad_users,
      'generations_checked', v_generations, 'generations_wrong', v_bad_generations,
      'purchases_checked', v_purchases, 'purchases_wrong', v_bad_purchases),
    'refunds', jsonb_build_object('count', v_ledger.refunds, 'credits', v_ledger.refunded),
    'credits', jsonb_build_object(
      'deducted', v_ledger.deducted, 'refunded', v_ledger.refunded,
      'spent', v_ledger.deducted - v_ledger.refunded, 'bought', v_ledger.bought,
      'taken_back', v_ledger.taken_back, 'granted', v_ledger.granted),
    'provider', jsonb_build_object(
      'spend_usd', round(v_gen.spend_usd, 4),
      'predict_time_s', round(v_gen.predict_s::numeric, 1),
      'spend_last_24h_usd', round(v_spend_24h, 4),
      'daily_budget_usd', p_daily_budget_usd,
      'budget_exhausted', coalesce(v_spend_24h >= p_daily_budget_usd, false)),
    'revenue', jsonb_build_object(
      'value', round(v_sales.net / 100.0, 2), 'currency', 'usd',
      'gross', round(v_sales.gross / 100.0, 2), 'refunded', round(v_sales.refunded / 100.0, 2),
      'disputes_lost', round(v_sales.lost / 100.0, 2),
      'disputes_open', round(v_sales.at_risk / 100.0, 2),
      'purchases', v_sales.paid, 'credits_sold', v_sales.credits,
      'other_currencies', v_other),
    'margin', jsonb_build_object(
      'value', round(v_sales.net / 100.0 - v_gen.spend_usd, 4), 'currency', 'usd')
  );
end
$$;

comment on function public.operator_stats(timestamptz, double precision, double precision, double precision,
  double precision) is
  'The operator''s numbers since p_since, each against its target (see the header).';
