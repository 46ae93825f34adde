-- =============================================================================================
-- 0002 Credits: the only code that changes a balance.
--
-- Every balance change is one ledger row plus one UPDATE of users.credits in the same
-- transaction (private.post_ledger), so users.credits = SUM(amount) holds by construction.
--
-- Errors use stable custom SQLSTATEs (mapped in shared/rpc.py; never matched by message):
--   WN402 insufficient credits      DETAIL: {"balance": n, "required": n}
--   WN404 not found                 DETAIL: {"entity": "user" | "generation"}
--   WN409 idempotency conflict
--   WN412 invalid state transition  DETAIL: {"status": current status}
--   WN422 invalid argument
--   WN429 too many active           DETAIL: {"active": n, "limit": n}
-- =============================================================================================

-- ---------------------------------------------------------------------------------------------
-- private.post_ledger: append one entry and move the balance with it.
-- ---------------------------------------------------------------------------------------------
create function private.post_ledger(
  p_user_id uuid,
  p_amount integer,
  p_type text,
  p_generation_id uuid,
  p_description text
) returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_balance integer;
begin
  update public.users
     set credits = credits + p_amount, updated_at = now()
   where id = p_user_id
  returning credits into v_balance;
  if not found then
    raise exception using errcode = 'WN404', message = 'user not found',
      detail = json_build_object('entity', 'user')::text;
  end if;
  insert into public.credit_transactions (user_id, amount, type, generation_id, description)
  values (p_user_id, p_amount, p_type, p_generation_id, p_description);
  return v_balance;
end
$$;

comment on function private.post_ledger is
  'Append a ledger entry and apply it to users.credits; the CHECK keeps credits >= 0.';

-- ---------------------------------------------------------------------------------------------
-- private.refund: give back a generation's deduction, at most once. Returns the amount (0 when
-- there is nothing to give back or it was already given back).
-- ---------------------------------------------------------------------------------------------
create function private.refund(p_generation_id uuid, p_description text)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_user_id uuid;
  v_charged integer;
begin
  select user_id, -amount into v_user_id, v_charged
    from public.credit_transactions
   where generation_id = p_generation_id and type = 'deduction';
  if not found then
    return 0;
  end if;
  -- The unique index on refunds makes a concurrent second refund impossible; checking first
  -- keeps the common replay path free of an error.
  if exists (
    select 1 from public.credit_transactions
     where generation_id = p_generation_id and type = 'refund'
  ) then
    return 0;
  end if;
  perform private.post_ledger(v_user_id, v_charged, 'refund', p_generation_id, p_description);
  return v_charged;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Signup: every new auth user gets a users row and the signup bonus, in the signup transaction.
-- ---------------------------------------------------------------------------------------------
create function private.handle_new_user()
returns trigger
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  insert into public.users (id, email) values (new.id, new.email);
  perform private.post_ledger(new.id, 100, 'signup_bonus', null, 'Welcome bonus');
  return new;
end
$$;

create trigger on_auth_user_created
  after insert on auth.users
  for each row execute function private.handle_new_user();

-- ---------------------------------------------------------------------------------------------
-- deduct_credits: charge a user, optionally for a generation (at most once per generation).
-- ---------------------------------------------------------------------------------------------
create function public.deduct_credits(
  p_user_id uuid,
  p_amount integer,
  p_generation_id uuid default null
) returns table (balance integer)
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_balance integer;
begin
  if p_amount is null or p_amount <= 0 then
    raise exception using errcode = 'WN422', message = 'amount must be a positive integer';
  end if;
  select u.credits into v_balance from public.users u where u.id = p_user_id for update;
  if not found then
    raise exception using errcode = 'WN404', message = 'user not found',
      detail = json_build_object('entity', 'user')::text;
  end if;
  -- Charging the same generation again is a no-op, not a second charge.
  if p_generation_id is not null and exists (
    select 1 from public.credit_transactions t
     where t.generation_id = p_generation_id and t.type = 'deduction'
  ) then
    return query select v_balance;
    return;
  end if;
  if v_balance < p_amount then
    raise exception using errcode = 'WN402', message = 'insufficient credits',
      detail = json_build_object('balance', v_balance, 'required', p_amount)::text;
  end if;
  return query select private.post_ledger(
    p_user_id, -p_amount, 'deduction', p_generation_id, 'Generation charge');
end
$$;

comment on function public.deduct_credits is
  'Charge p_amount credits; WN402 when the balance is short; idempotent per generation.';

-- ---------------------------------------------------------------------------------------------
-- add_credits: purchases, bonuses and (possibly negative) adjustments.
-- ---------------------------------------------------------------------------------------------
create function public.add_credits(
  p_user_id uuid,
  p_amount integer,
  p_type text default 'bonus',
  p_description text default null
) returns table (balance integer)
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_balance integer;
begin
  if p_type is null or p_type not in ('purchase', 'bonus', 'adjustment') then
    raise exception using errcode = 'WN422',
      message = 'type must be purchase, bonus or adjustment';
  end if;
  if p_amount is null or p_amount = 0 or (p_amount < 0 and p_type <> 'adjustment') then
    raise exception using errcode = 'WN422',
      message = 'amount must be positive (only an adjustment may be negative)';
  end if;
  select u.credits into v_balance from public.users u where u.id = p_user_id for update;
  if not found then
    raise exception using errcode = 'WN404', message = 'user not found',
      detail = json_build_object('entity', 'user')::text;
  end if;
  if v_balance + p_amount < 0 then
    raise exception using errcode = 'WN402', message = 'adjustment would make the balance negative',
      detail = json_build_object('balance', v_balance, 'required', -p_amount)::text;
  end if;
  return query select private.post_ledger(p_user_id, p_amount, p_type, null, p_description);
end
$$;

comment on function public.add_credits is 'Credit (or, for adjustments, debit) a user''s balance.';

-- ---------------------------------------------------------------------------------------------
-- refund_credits: give back a failed or canceled generation's charge, exactly once.
-- ---------------------------------------------------------------------------------------------
create function public.refund_credits(p_generation_id uuid)
returns table (refunded integer, balance integer)
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_user_id uuid;
  v_status text;
  v_refunded integer;
begin
  -- Lock the generation so a refund cannot race its own state change.
  select g.user_id, g.status into v_user_id, v_status
    from public.generations g where g.id = p_generation_id for update;
  if not found then
    raise exception using errcode = 'WN404', message = 'generation not found',
      detail = json_build_object('entity', 'generation')::text;
  end if;
  if v_status not in ('failed', 'canceled') then
    raise exception using errcode = 'WN412',
      message = 'only a failed or canceled generation can be refunded',
      detail = json_build_object('status', v_status)::text;
  end if;
  v_refunded := private.refund(p_generation_id, 'Refund');
  return query select v_refunded, u.credits from public.users u where u.id = v_user_id;
end
$$;

comment on function public.refund_credits is
  'Refund a failed or canceled generation; a second call refunds nothing (refunded = 0).';

-- ---------------------------------------------------------------------------------------------
-- Privileges: only the service role calls these; the private helpers nobody but their owner.
-- ---------------------------------------------------------------------------------------------
revoke all on all functions in schema private from public, anon, authenticated, service_role;
revoke execute on function
  public.deduct_credits(uuid, integer, uuid),
  public.add_credits(uuid, integer, text, text),
  public.refund_credits(uuid)
from public, anon, authenticated;
grant execute on function
  public.deduct_credits(uuid, integer, uuid),
  public.add_credits(uuid, integer, text, text),
  public.refund_credits(uuid)
to service_role;
