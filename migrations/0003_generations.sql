-- =============================================================================================
-- 0003 Generations: creation with its charge, and the state machine.
--
--   queued --mark_submitted--> processing --apply_prediction--> completed | failed | canceled
--      \_____________________ apply_prediction / request_cancel ___________^
--
-- Status only moves forward; a terminal row never changes again; failed and canceled rows are
-- refunded in the same transaction that makes them terminal. Functions return the generation as
-- jsonb so both RPC transports (psycopg, PostgREST) read the same shape.
-- =============================================================================================

create function private.status_rank(p_status text)
returns integer
language sql
immutable
set search_path = ''
as $$
  select case p_status
    when 'queued' then 0
    when 'processing' then 1
    when 'completed' then 2
    when 'failed' then 2
    when 'canceled' then 2
  end
$$;

create function private.raise_generation_not_found()
returns void
language plpgsql
set search_path = ''
as $$
begin
  raise exception using errcode = 'WN404', message = 'generation not found',
    detail = json_build_object('entity', 'generation')::text;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- create_generation: idempotency lookup, active cap, insert and charge, in one transaction.
-- ---------------------------------------------------------------------------------------------
create function public.create_generation(
  p_user_id uuid,
  p_kind text,
  p_model text,
  p_resolution text,
  p_prompt text,
  p_cost integer,
  p_negative_prompt text default null,
  p_params jsonb default '{}'::jsonb,
  p_input_image_path text default null,
  p_input_digest text default null,
  p_idempotency_key text default null,
  p_max_active integer default 3,
  p_retry_of uuid default null
) returns table (generation jsonb, created boolean, balance integer)
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_balance integer;
  v_hash text;
  v_existing public.generations;
  v_row public.generations;
  v_active integer;
begin
  if p_cost is null or p_cost <= 0 then
    raise exception using errcode = 'WN422', message = 'cost must be a positive integer';
  end if;
  if p_kind is null or p_kind not in ('t2v', 'i2v') then
    raise exception using errcode = 'WN422', message = 'kind must be t2v or i2v';
  end if;
  if p_max_active is null or p_max_active < 1 then
    raise exception using errcode = 'WN422', message = 'max_active must be at least 1';
  end if;
  if p_idempotency_key is not null and length(p_idempotency_key) not between 1 and 255 then
    raise exception using errcode = 'WN422', message = 'idempotency key must be 1-255 characters';
  end if;

  -- The user's row lock serializes this user's creates: the key lookup, the active count and
  -- the balance check below all see every earlier create of the same user.
  select u.credits into v_balance from public.users u where u.id = p_user_id for update;
  if not found then
    raise exception using errcode = 'WN404', message = 'user not found',
      detail = json_build_object('entity', 'user')::text;
  end if;

  v_hash := md5(jsonb_build_array(
    p_kind, p_model, p_resolution, p_prompt, p_negative_prompt,
    coalesce(p_params, '{}'::jsonb), p_input_digest, p_retry_of
  )::text);

  if p_idempotency_key is not null then
    select * into v_existing from public.generations g
     where g.user_id = p_user_id and g.idempotency_key = p_idempotency_key;
    if found then
      if v_existing.request_hash <> v_hash then
        raise exception using errcode = 'WN409',
          message = 'idempotency key reused with different parameters';
      end if;
      return query select to_jsonb(v_existing), false, v_balance;
      return;
    end if;
  end if;

  select count(*) into v_active from public.generations g
   where g.user_id = p_user_id and g.status in ('queued', 'processing');
  if v_active >= p_max_active then
    raise exception using errcode = 'WN429', message = 'too many active generations',
      detail = json_build_object('active', v_active, 'limit', p_max_active)::text;
  end if;

  if v_balance < p_cost then
    raise exception using errcode = 'WN402', message = 'insufficient credits',
      detail = json_build_object('balance', v_balance, 'required', p_cost)::text;
  end if;

  insert into public.generations (
    user_id, kind, model, resolution, prompt, negative_prompt, params, input_image_path,
    cost, idempotency_key, request_hash, retry_of
  ) values (
    p_user_id, p_kind, p_model, p_resolution, p_prompt, p_negative_prompt,
    coalesce(p_params, '{}'::jsonb), p_input_image_path, p_cost, p_idempotency_key, v_hash,
    p_retry_of
  ) returning * into v_row;

  v_balance := private.post_ledger(
    p_user_id, -p_cost, 'deduction', v_row.id, 'Generation charge');
  return query select to_jsonb(v_row), true, v_balance;
end
$$;

comment on function public.create_generation is
  'Reserve the cost and record a queued generation; a replayed idempotency key returns the '
  'stored generation (created = false) and charges nothing.';

-- ---------------------------------------------------------------------------------------------
-- mark_submitted: the provider accepted the prediction; queued -> processing with its job id.
-- changed = false when the row had already moved on (a webhook or the sweeper got there first);
-- the caller then compares job ids to decide whether its prediction is an orphan to cancel.
-- ---------------------------------------------------------------------------------------------
create function public.mark_submitted(p_generation_id uuid, p_job_id text)
returns table (generation jsonb, changed boolean)
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_row public.generations;
begin
  if p_job_id is null or p_job_id = '' then
    raise exception using errcode = 'WN422', message = 'job_id is required';
  end if;
  select * into v_row from public.generations g where g.id = p_generation_id for update;
  if not found then
    perform private.raise_generation_not_found();
  end if;
  if v_row.status <> 'queued' or v_row.job_id is not null then
    return query select to_jsonb(v_row), false;
    return;
  end if;
  update public.generations g
     set status = 'processing', job_id = p_job_id, started_at = coalesce(g.started_at, now()),
         updated_at = now()
   where g.id = p_generation_id
  returning * into v_row;
  return query select to_jsonb(v_row), true;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- apply_prediction: the state machine. Input statuses are ours (the adapter maps Replicate's).
-- Duplicates, stale and out-of-order updates change nothing; failed/canceled refund once.
-- ---------------------------------------------------------------------------------------------
create function public.apply_prediction(
  p_generation_id uuid,
  p_status text,
  p_job_id text default null,
  p_progress integer default null,
  p_video_url text default null,
  p_error text default null
) returns table (generation jsonb, changed boolean, refunded integer)
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_row public.generations;
  v_new public.generations;
  v_refunded integer := 0;
  v_progress integer;
begin
  if p_status is null or p_status not in ('processing', 'completed', 'failed', 'canceled') then
    raise exception using errcode = 'WN422',
      message = 'status must be processing, completed, failed or canceled';
  end if;
  if p_status = 'completed' and (p_video_url is null or p_video_url = '') then
    raise exception using errcode = 'WN422', message = 'a completed generation needs a video_url';
  end if;
  v_progress := least(greatest(coalesce(p_progress, 0), 0), 100);

  select * into v_row from public.generations g where g.id = p_generation_id for update;
  if not found then
    perform private.raise_generation_not_found();
  end if;

  -- An update about some other prediction (not ours) never touches this row.
  if p_job_id is not null and v_row.job_id is not null and v_row.job_id <> p_job_id then
    return query select to_jsonb(v_row), false, 0;
    return;
  end if;
  if private.status_rank(v_row.status) = 2 then
    return query select to_jsonb(v_row), false, 0;
    return;
  end if;

  if p_status = 'processing' then
    if v_row.status = 'processing' and v_progress <= v_row.progress
       and (p_job_id is null or v_row.job_id is not null) then
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
           started_at = coalesce(g.started_at, now()), completed_at = now(), updated_at = now()
     where g.id = p_generation_id
    returning * into v_new;
  else
    update public.generations g
       set status = p_status, job_id = coalesce(g.job_id, p_job_id),
           error_message = coalesce(nullif(p_error, ''),
             case p_status when 'canceled' then 'Canceled' else 'Generation failed' end),
           completed_at = now(), updated_at = now()
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
  'change; failed and canceled are refunded once, in the same transaction.';

-- ---------------------------------------------------------------------------------------------
-- request_cancel: the owner asks to stop. A queued row (no prediction yet) is canceled and
-- refunded at once; a processing one is marked and the caller cancels it at the provider.
-- ---------------------------------------------------------------------------------------------
create function public.request_cancel(p_user_id uuid, p_generation_id uuid)
returns table (generation jsonb, changed boolean, refunded integer)
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_row public.generations;
  v_refunded integer := 0;
begin
  select * into v_row from public.generations g
   where g.id = p_generation_id and g.user_id = p_user_id for update;
  if not found then
    perform private.raise_generation_not_found();
  end if;
  if private.status_rank(v_row.status) = 2 then
    raise exception using errcode = 'WN412', message = 'generation is already finished',
      detail = json_build_object('status', v_row.status)::text;
  end if;
  if v_row.job_id is null then
    update public.generations g
       set status = 'canceled', error_message = 'Canceled by user',
           cancel_requested_at = coalesce(g.cancel_requested_at, now()),
           completed_at = now(), updated_at = now()
     where g.id = p_generation_id
    returning * into v_row;
    v_refunded := private.refund(p_generation_id, 'Refund: canceled');
  elsif v_row.cancel_requested_at is null then
    update public.generations g
       set cancel_requested_at = now(), updated_at = now()
     where g.id = p_generation_id
    returning * into v_row;
  else
    return query select to_jsonb(v_row), false, 0;
    return;
  end if;
  return query select to_jsonb(v_row), true, v_refunded;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- claim_stale_generations: live rows nothing was heard of for p_stale_after_s seconds, oldest
-- first; SKIP LOCKED and the last_polled_at stamp keep overlapping sweepers off the same rows.
-- ---------------------------------------------------------------------------------------------
create function public.claim_stale_generations(
  p_limit integer default 100,
  p_stale_after_s integer default 120
) returns table (generation jsonb)
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  if p_limit is null or p_limit not between 1 and 10000 then
    raise exception using errcode = 'WN422', message = 'limit must be 1-10000';
  end if;
  if p_stale_after_s is null or p_stale_after_s < 0 then
    raise exception using errcode = 'WN422', message = 'stale_after_s must be >= 0';
  end if;
  return query
  with picked as (
    select g.id from public.generations g
     where g.status in ('queued', 'processing')
       and greatest(g.updated_at, g.last_polled_at)
           <= now() - make_interval(secs => p_stale_after_s)
     order by greatest(g.updated_at, g.last_polled_at)
     limit p_limit
     for update skip locked
  )
  update public.generations g
     set last_polled_at = now(), poll_attempts = g.poll_attempts + 1
    from picked
   where g.id = picked.id
  returning to_jsonb(g.*);
end
$$;

-- ---------------------------------------------------------------------------------------------
-- set_video_path: our own copy of a completed generation's video exists.
-- ---------------------------------------------------------------------------------------------
create function public.set_video_path(p_generation_id uuid, p_video_path text)
returns table (generation jsonb, changed boolean)
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_row public.generations;
begin
  if p_video_path is null or p_video_path = '' then
    raise exception using errcode = 'WN422', message = 'video_path is required';
  end if;
  select * into v_row from public.generations g where g.id = p_generation_id for update;
  if not found then
    perform private.raise_generation_not_found();
  end if;
  if v_row.status <> 'completed' then
    raise exception using errcode = 'WN412', message = 'only a completed generation has a video',
      detail = json_build_object('status', v_row.status)::text;
  end if;
  if v_row.video_path is not null then
    return query select to_jsonb(v_row), false;
    return;
  end if;
  update public.generations g set video_path = p_video_path, updated_at = now()
   where g.id = p_generation_id
  returning * into v_row;
  return query select to_jsonb(v_row), true;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- get_generation: the owner's view of one generation (reads go through functions too, so both
-- transports share one path and the owner check lives in SQL).
-- ---------------------------------------------------------------------------------------------
create function public.get_generation(p_user_id uuid, p_generation_id uuid)
returns table (generation jsonb)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  return query select to_jsonb(g.*) from public.generations g
   where g.id = p_generation_id and g.user_id = p_user_id;
  if not found then
    perform private.raise_generation_not_found();
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------------------------
revoke all on all functions in schema private from public, anon, authenticated, service_role;
revoke execute on function
  public.create_generation(uuid, text, text, text, text, integer, text, jsonb, text, text, text,
                           integer, uuid),
  public.mark_submitted(uuid, text),
  public.apply_prediction(uuid, text, text, integer, text, text),
  public.request_cancel(uuid, uuid),
  public.claim_stale_generations(integer, integer),
  public.set_video_path(uuid, text),
  public.get_generation(uuid, uuid)
from public, anon, authenticated;
grant execute on function
  public.create_generation(uuid, text, text, text, text, integer, text, jsonb, text, text, text,
                           integer, uuid),
  public.mark_submitted(uuid, text),
  public.apply_prediction(uuid, text, text, integer, text, text),
  public.request_cancel(uuid, uuid),
  public.claim_stale_generations(integer, integer),
  public.set_video_path(uuid, text),
  public.get_generation(uuid, uuid)
to service_role;
