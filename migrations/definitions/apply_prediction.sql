-- apply_prediction: the state machine. Input statuses are ours (the adapter maps Replicate's).
--
--   queued --mark_submitted--> processing --apply_prediction--> completed | failed | canceled
--
-- Status only moves forward; a terminal row never changes again; duplicates, stale and
-- out-of-order updates change nothing; failed and canceled are refunded once, in the same
-- transaction that makes them terminal.
--
-- p_source names the path that brought the update (webhook, poll, sweep, cancel); the one that
-- makes the row terminal is recorded in finished_by (the stats' webhook delivery rate).
-- p_predict_time is the provider's metrics.predict_time: on a final report it records the
-- provider time and its estimated cost (predict time * the row's price_per_s), also when the
-- row is already terminal (a cancel answered first, its final webhook carries the metrics).
drop function if exists public.apply_prediction(uuid, text, text, integer, text, text);
create or replace function public.apply_prediction(
  p_generation_id uuid, p_status text, p_job_id text, p_progress integer, p_video_url text,
  p_error text, p_source text, p_predict_time double precision
) returns table (generation jsonb, changed boolean, refunded integer)
language plpgsql volatile security definer set search_path = '' as $$
declare v_row public.generations;
  v_new public.generations;
  v_refunded integer := 0;
  v_progress integer;
  v_predict double precision;
begin
  if p_status is null or p_status not in ('processing', 'completed', 'failed', 'canceled') then
    raise exception using errcode = 'WN422',
      message = 'status must be processing, completed, failed or canceled';
  end if;
  if p_status = 'completed' and (p_video_url is null or p_video_url = '') then
    raise exception using errcode = 'WN422', message = 'a completed generation needs a video_url';
  end if;
  if p_source is not null and p_source not in ('webhook', 'poll', 'sweep', 'cancel') then
    raise exception using errcode = 'WN422',
      message = 'source must be webhook, poll, sweep or cancel';
  end if;
  v_progress := least(greatest(coalesce(p_progress, 0), 0), 100);
  -- Only a final report's metrics count, and only sane ones (a week of GPU time is not).
  v_predict := case
    when p_status <> 'processing' and p_predict_time between 0 and 7 * 86400 then p_predict_time
  end;

  v_row := private.lock_generation(p_generation_id, null);

  -- An update about some other prediction (not ours) never touches this row.
  if p_job_id is not null and v_row.job_id is not null and v_row.job_id <> p_job_id then
    return query select to_jsonb(v_row), false, 0;
    return;
  end if;
  -- Nor does anything change a terminal one, but its provider time (once).
  if v_row.status in ('completed', 'failed', 'canceled') then
    if v_predict is not null and v_row.predict_time_s is null then
      update public.generations g
         set predict_time_s = v_predict, provider_cost_usd = v_predict * g.price_per_s
       where g.id = p_generation_id
      returning * into v_row;
    end if;
    return query select to_jsonb(v_row), false, 0;
    return;
  end if;

  if p_status = 'processing' then
    -- Nothing is processing without a prediction to ask about (a report that names none, for a
    -- row that has none, changes nothing; the sweeper settles such a row).
    if (v_row.status = 'processing' and v_progress <= v_row.progress
        and (p_job_id is null or v_row.job_id is not null))
       or coalesce(v_row.job_id, p_job_id) is null then
      return query select to_jsonb(v_row), false, 0;
      return;
    end if;
    update public.generations g
       set status = 'processing',
           job_id = coalesce(g.job_id, p_job_id),
           progress = greatest(g.progress, least(v_progress, 99)),
           started_at = coalesce(g.started_at, now()),
           updated_at = now()
     where g.id = p_generation_id
    returning * into v_new;
  elsif p_status = 'completed' then
    update public.generations g
       set status = 'completed', job_id = coalesce(g.job_id, p_job_id), progress = 100,
           video_url = p_video_url, error_message = null,
           started_at = coalesce(g.started_at, now()), completed_at = now(), updated_at = now(),
           finished_by = p_source, predict_time_s = v_predict,
           provider_cost_usd = v_predict * g.price_per_s
     where g.id = p_generation_id
    returning * into v_new;
  else
    update public.generations g
       set status = p_status, job_id = coalesce(g.job_id, p_job_id),
           error_message = coalesce(nullif(p_error, ''),
             case p_status when 'canceled' then 'Canceled' else 'Generation failed' end),
           completed_at = now(), updated_at = now(),
           finished_by = p_source, predict_time_s = v_predict,
           provider_cost_usd = v_predict * g.price_per_s
     where g.id = p_generation_id
    returning * into v_new;
    v_refunded := private.refund(p_generation_id,
      case p_status when 'canceled' then 'Refund: canceled' else 'Refund: generation failed' end);
  end if;
  return query select to_jsonb(v_new), true, v_refunded;
end
$$;

comment on function public.apply_prediction is
  'Move a generation forward (processing/completed/failed/canceled); terminal rows never '
  'change state; failed and canceled are refunded once, in the same transaction; a final '
  'report records the provider time, its estimated cost and the path it came by.';
