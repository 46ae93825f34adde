-- public.create_generation: idempotency-key lookup, per-user active cap, retry rule, insert
-- (queued) and deduction, in one transaction. Body as in 0007_retry_rule.sql, plus the hold
-- check (payments, 0010): an account on hold starts no new generation (WN403).
create or replace function public.create_generation(
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
  v_retry_status text;
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
  -- An account on hold (payments: a dispute, credits owed) starts nothing new.
  perform private.assert_not_held(p_user_id);

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

  -- A retry must be of this user's own failed or canceled generation.
  if p_retry_of is not null then
    select g.status into v_retry_status from public.generations g
     where g.id = p_retry_of and g.user_id = p_user_id;
    if not found then
      perform private.raise_generation_not_found();
    end if;
    if v_retry_status not in ('failed', 'canceled') then
      raise exception using errcode = 'WN412',
        message = 'only a failed or canceled generation can be retried',
        detail = json_build_object('status', v_retry_status)::text;
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


revoke all on function public.create_generation(
  uuid, text, text, text, text, integer, text, jsonb, text, text, text, integer, uuid
) from public, anon, authenticated;
grant execute on function public.create_generation(
  uuid, text, text, text, text, integer, text, jsonb, text, text, text, integer, uuid
) to service_role;
