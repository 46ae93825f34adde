-- create_generation: idempotency lookup, retry rule, active cap, insert and charge, in one
-- transaction. Returns the generation as jsonb (both RPC transports read the same shape).
-- Every refusal after the user's row lock carries the balance read under that lock (detail
-- JSON `balance`), so a 402/404/409/412/429 body shows the real balance, not a second read.
--
-- p_new is shared.core.domain.NewGeneration as JSON, the one definition of a new generation's
-- fields (user_id, kind, model, resolution, prompt, cost, negative_prompt, params,
-- input_image_path, input_digest, idempotency_key, retry_of, price_per_s: the catalog's USD per
-- second of provider time, kept so the cost can be estimated when the provider reports).
-- The limits come from settings: p_max_active; p_rate_per_minute (null = none) answers WN430;
-- p_daily_budget_usd (null = none) answers WN503. Every guardrail runs before anything is
-- charged or created; a replayed idempotency key returns the stored generation without taking a
-- rate slot; a deleted account is not found; an account on hold (payments, 0010) gets WN403.
drop function if exists public.create_generation(
  uuid, text, text, text, text, integer, text, jsonb, text, text, text, integer, uuid);
drop function if exists public.create_generation(jsonb, integer);
create or replace function public.create_generation(
  p_new jsonb, p_max_active integer, p_rate_per_minute integer,
  p_daily_budget_usd double precision
)
returns table (generation jsonb, created boolean, balance integer)
language plpgsql volatile security definer set search_path = '' as $$
declare v_balance integer;
  v_hash text;
  v_existing public.generations;
  v_row public.generations;
  v_active integer;
  v_retry_status text;
  v_new record;
begin
  -- A malformed value (not a uuid, not an integer) is the caller's bug: the cast fails (22P02).
  select * into v_new from jsonb_to_record(p_new) as x(
    user_id uuid, kind text, model text, resolution text, prompt text, cost integer,
    negative_prompt text, params jsonb, input_image_path text, input_digest text,
    idempotency_key text, retry_of uuid, price_per_s double precision);
  if v_new.cost is null or v_new.cost <= 0 then
    raise exception using errcode = 'WN422', message = 'cost must be a positive integer';
  end if;
  if v_new.kind is null or v_new.kind not in ('t2v', 'i2v') then
    raise exception using errcode = 'WN422', message = 'kind must be t2v or i2v';
  end if;
  if v_new.price_per_s is not null and v_new.price_per_s < 0 then
    raise exception using errcode = 'WN422', message = 'price_per_s must be >= 0';
  end if;
  if p_max_active is null or p_max_active < 1 then
    raise exception using errcode = 'WN422', message = 'max_active must be at least 1';
  end if;
  if v_new.idempotency_key is not null
     and length(v_new.idempotency_key) not between 1 and 255 then
    raise exception using errcode = 'WN422', message = 'idempotency key must be 1-255 characters';
  end if;

  -- The user's row lock serializes this user's creates: the key lookup, the rate slots, the
  -- active count and the balance check below all see every earlier create of the same user.
  v_balance := private.lock_user(v_new.user_id);
  perform private.require_found(not exists (
    select 1 from public.users u where u.id = v_new.user_id and u.deleted_at is not null), 'user');
  -- An account on hold (payments: a dispute, credits owed) starts nothing new; under the lock,
  -- so a hold placed concurrently is seen. Even a replayed key is refused: reads still work.
  perform private.assert_not_held(v_new.user_id);

  v_hash := md5(jsonb_build_array(
    v_new.kind, v_new.model, v_new.resolution, v_new.prompt, v_new.negative_prompt,
    coalesce(v_new.params, '{}'::jsonb), v_new.input_digest, v_new.retry_of
  )::text);

  if v_new.idempotency_key is not null then
    select * into v_existing from public.generations g
     where g.user_id = v_new.user_id and g.idempotency_key = v_new.idempotency_key;
    if found then
      if v_existing.request_hash <> v_hash then
        raise exception using errcode = 'WN409',
          message = 'idempotency key reused with different parameters',
          detail = json_build_object('balance', v_balance)::text;
      end if;
      return query select to_jsonb(v_existing), false, v_balance;
      return;
    end if;
  end if;

  -- A retry must be of this user's own failed or canceled (and not deleted) generation.
  if v_new.retry_of is not null then
    select g.status into v_retry_status from public.generations g
     where g.id = v_new.retry_of and g.user_id = v_new.user_id and g.deleted_at is null;
    if not found then
      raise exception using errcode = 'WN404', message = 'generation not found',
        detail = json_build_object('entity', 'generation', 'balance', v_balance)::text;
    end if;
    if v_retry_status not in ('failed', 'canceled') then
      raise exception using errcode = 'WN412',
        message = 'only a failed or canceled generation can be retried',
        detail = json_build_object('status', v_retry_status, 'balance', v_balance)::text;
    end if;
  end if;

  perform private.check_provider_budget(p_daily_budget_usd);
  if p_rate_per_minute is not null then
    perform private.take_create_slot(v_new.user_id, p_rate_per_minute);
  end if;

  select count(*) into v_active from public.generations g
   where g.user_id = v_new.user_id and g.status in ('queued', 'processing');
  if v_active >= p_max_active then
    raise exception using errcode = 'WN429', message = 'too many active generations',
      detail = json_build_object(
        'active', v_active, 'limit', p_max_active, 'balance', v_balance)::text;
  end if;

  if v_balance < v_new.cost then
    raise exception using errcode = 'WN402', message = 'insufficient credits',
      detail = json_build_object('balance', v_balance, 'required', v_new.cost)::text;
  end if;

  insert into public.generations (
    user_id, kind, model, resolution, prompt, negative_prompt, params, input_image_path,
    cost, idempotency_key, request_hash, retry_of, price_per_s
  ) values (
    v_new.user_id, v_new.kind, v_new.model, v_new.resolution, v_new.prompt, v_new.negative_prompt,
    coalesce(v_new.params, '{}'::jsonb), v_new.input_image_path, v_new.cost,
    v_new.idempotency_key, v_hash, v_new.retry_of, v_new.price_per_s
  ) returning * into v_row;

  v_balance := private.post_ledger(
    v_new.user_id, -v_new.cost, 'deduction', v_row.id, 'Generation charge');
  return query select to_jsonb(v_row), true, v_balance;
end
$$;

comment on function public.create_generation is
  'Reserve the cost and record a queued generation, within the rate limit and the provider '
  'budget; a replayed idempotency key returns the stored generation (created = false) and '
  'charges nothing.';
