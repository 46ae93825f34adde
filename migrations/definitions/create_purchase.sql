-- public.create_purchase: record a pending purchase of a credit pack, before its Checkout
-- Session is created (the session names our purchase id, so the id must exist first).
-- The pack's credits, amount and currency come from settings (CREDIT_PACKS) and are fixed here:
-- the payment is later checked against them. A replayed Idempotency-Key returns the same
-- purchase (created = false) without taking a rate slot; the same key for another pack is a
-- conflict (WN409). An account on hold cannot buy (WN403), a deleted one is not found (WN404),
-- and a checkout takes one of the user's create slots like a generation does
-- (p_rate_per_minute from CREATE_RATE_PER_MINUTE, null = no limit; WN430).
drop function if exists public.create_purchase(uuid, text, integer, integer, text, text);
create or replace function public.create_purchase(
  p_user_id uuid, p_pack_id text, p_credits integer, p_amount integer, p_currency text,
  p_idempotency_key text, p_rate_per_minute integer
) returns table (purchase jsonb, created boolean)
language plpgsql volatile security definer set search_path = '' as $$
declare v_existing public.purchases;
  v_row public.purchases;
begin
  if p_pack_id is null or p_pack_id !~ '^[a-z0-9_-]{1,64}$' then
    raise exception using errcode = 'WN422', message = 'pack must be a short lower-case name';
  end if;
  perform private.require_between('credits', p_credits, 1, null);
  perform private.require_between('amount', p_amount, 1, null);
  if p_currency is null or p_currency !~ '^[a-z]{3}$' then
    raise exception using errcode = 'WN422', message = 'currency must be a lower-case ISO code';
  end if;
  if p_idempotency_key is not null and length(p_idempotency_key) not between 1 and 255 then
    raise exception using errcode = 'WN422', message = 'idempotency key must be 1-255 characters';
  end if;

  -- The user's row lock serializes this user's purchases (and creates) and sees a hold placed
  -- concurrently.
  perform private.lock_user(p_user_id);
  perform private.require_found(not exists (
    select 1 from public.users u where u.id = p_user_id and u.deleted_at is not null), 'user');
  perform private.assert_not_held(p_user_id);

  if p_idempotency_key is not null then
    select * into v_existing from public.purchases p
     where p.user_id = p_user_id and p.idempotency_key = p_idempotency_key;
    if found then
      if (v_existing.pack_id, v_existing.credits, v_existing.amount, v_existing.currency)
         is distinct from (p_pack_id, p_credits, p_amount, p_currency) then
        raise exception using errcode = 'WN409',
          message = 'idempotency key reused with different parameters';
      end if;
      return query select to_jsonb(v_existing), false;
      return;
    end if;
  end if;

  if p_rate_per_minute is not null then
    perform private.take_create_slot(p_user_id, p_rate_per_minute);
  end if;

  insert into public.purchases (user_id, pack_id, credits, amount, currency, idempotency_key)
  values (p_user_id, p_pack_id, p_credits, p_amount, p_currency, p_idempotency_key)
  returning * into v_row;
  return query select to_jsonb(v_row), true;
end
$$;

comment on function public.create_purchase is
  'Record a pending purchase of a pack (idempotent per key), within the create rate limit; '
  'refused for an account on hold.';
