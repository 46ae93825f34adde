-- =============================================================================================
-- 0010 Payments: credit packs bought through Stripe Checkout, refunds and disputes.
--
-- Tables, columns, indexes only; the functions that write them live in migrations/definitions/
-- (create_purchase, apply_stripe_event, settle_checkout, claim_pending_purchases, list_purchases,
-- lift_hold and their private helpers), row-level security and grants in
-- definitions/policies/purchases.sql and stripe_events.sql. Stripe delivers at least once, in any order, or never, so:
--   - every event is recorded by its id (stripe_events) in the same transaction as its effect;
--   - a purchase is granted at most once and each claw-back at most once per refunded amount or
--     dispute (unique partial indexes on the ledger);
--   - what cannot be taken back from a balance is recorded on the purchase and holds the account.
-- No personal data here: purchases and ledger rows outlive an account, for the books.
-- =============================================================================================

-- ---------------------------------------------------------------------------------------------
-- users: the hold
-- ---------------------------------------------------------------------------------------------
alter table public.users
  add column held_at timestamptz,
  add column hold_reason text,
  add column hold_lifted_at timestamptz,
  add column hold_lift_reason text;

comment on column public.users.held_at is
  'When the account was put on hold (no new generations or purchases; reads work); null = not held.';
comment on column public.users.hold_reason is 'Why it is on hold (a dispute, credits owed, ...).';
comment on column public.users.hold_lifted_at is 'When the last hold was lifted.';
comment on column public.users.hold_lift_reason is 'Why the last hold was lifted (operator or won dispute).';

-- ---------------------------------------------------------------------------------------------
-- purchases
-- ---------------------------------------------------------------------------------------------
create table public.purchases (
  id uuid primary key default gen_random_uuid(),
  -- Kept when the account goes (its users row stays as a tombstone without the email): the
  -- books need the row, not the person. No cascade: deleting a buyer's row fails instead.
  user_id uuid references public.users (id),
  pack_id text not null,
  credits integer not null constraint purchases_credits_positive check (credits > 0),
  amount integer not null constraint purchases_amount_positive check (amount > 0),
  currency text not null constraint purchases_currency_lower check (currency ~ '^[a-z]{3}$'),
  status text not null default 'pending' constraint purchases_status_valid
    check (status in ('pending', 'paid', 'failed', 'expired', 'review')),
  amount_refunded integer not null default 0
    constraint purchases_amount_refunded_range check (amount_refunded >= 0),
  dispute_id text,
  dispute_status text constraint purchases_dispute_status_valid
    check (dispute_status in ('open', 'won', 'lost')),
  dispute_amount integer not null default 0
    constraint purchases_dispute_amount_range check (dispute_amount >= 0),
  credits_reversed integer not null default 0
    constraint purchases_credits_reversed_range check (credits_reversed >= 0),
  credits_owed integer not null default 0
    constraint purchases_credits_owed_range check (credits_owed >= 0),
  session_id text constraint purchases_session_id_unique unique,
  checkout_url text,
  payment_intent text,
  paid_amount integer,
  paid_currency text,
  review_reason text,
  idempotency_key text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  paid_at timestamptz,
  closed_at timestamptz,
  last_checked_at timestamptz,
  check_attempts integer not null default 0,
  constraint purchases_idempotency_key_unique unique (user_id, idempotency_key)
);

comment on table public.purchases is
  'One credit pack bought through Stripe Checkout; written only by the payment functions.';
comment on column public.purchases.id is 'Our id; also the session''s client_reference_id and metadata.purchase_id.';
comment on column public.purchases.user_id is
  'The buyer; after account deletion a tombstone (public.users.deleted_at set, email cleared).';
comment on column public.purchases.pack_id is 'The pack bought (CREDIT_PACKS), e.g. small.';
comment on column public.purchases.credits is 'Credits the pack grants, fixed at checkout.';
comment on column public.purchases.amount is 'The price, in the currency''s minor unit, fixed at checkout.';
comment on column public.purchases.currency is 'ISO currency code, lower case (Stripe''s spelling).';
comment on column public.purchases.status is
  'pending -> paid | failed | expired | review (amount or currency paid differs from the pack). '
  'Money received always wins: a paid event moves failed or expired to paid.';
comment on column public.purchases.amount_refunded is
  'Cumulative amount refunded (Stripe''s charge.amount_refunded; only ever grows).';
comment on column public.purchases.dispute_id is 'The charge''s dispute, if any.';
comment on column public.purchases.dispute_status is 'open, won or lost (won and lost are final).';
comment on column public.purchases.dispute_amount is 'Amount the dispute withdrew.';
comment on column public.purchases.credits_reversed is
  'Credits currently reversed for refunds and disputes: taken from the balance plus owed.';
comment on column public.purchases.credits_owed is
  'Credits that could not be taken back (the balance was too low); the account is held.';
comment on column public.purchases.session_id is 'Stripe Checkout Session id (cs_...).';
comment on column public.purchases.checkout_url is 'The hosted checkout page to send the buyer to.';
comment on column public.purchases.payment_intent is 'Stripe PaymentIntent id (pi_...), once paid.';
comment on column public.purchases.paid_amount is 'Amount Stripe says was paid (amount_total).';
comment on column public.purchases.paid_currency is 'Currency Stripe says was paid.';
comment on column public.purchases.review_reason is 'Why the purchase needs an operator''s look.';
comment on column public.purchases.idempotency_key is
  'The client''s Idempotency-Key, unique per user; a replay returns this purchase.';
comment on column public.purchases.created_at is 'When the checkout was started.';
comment on column public.purchases.updated_at is 'When anything about it last changed.';
comment on column public.purchases.paid_at is 'When it was paid (and the credits granted).';
comment on column public.purchases.closed_at is 'When it failed, expired or went to review.';
comment on column public.purchases.last_checked_at is 'When reconciliation last asked Stripe.';
comment on column public.purchases.check_attempts is 'How many times reconciliation asked Stripe.';

create index purchases_user_created_idx on public.purchases (user_id, created_at desc, id desc);
create index purchases_payment_intent_idx on public.purchases (payment_intent)
  where payment_intent is not null;
-- Reconciliation's work list: only pending rows.
create index purchases_pending_idx on public.purchases ((coalesce(last_checked_at, created_at)))
  where status = 'pending';

-- ---------------------------------------------------------------------------------------------
-- stripe_events: every event id seen, so a replay changes nothing
-- ---------------------------------------------------------------------------------------------
create table public.stripe_events (
  id text primary key,
  type text not null,
  purchase_id uuid references public.purchases (id),
  payment_intent text,
  outcome text not null,
  facts jsonb not null default '{}'::jsonb,
  received_at timestamptz not null default now(),
  applied_at timestamptz
);

comment on table public.stripe_events is
  'Each Stripe event applied (or ignored) once, recorded in the same transaction as its effect.';
comment on column public.stripe_events.id is 'Stripe''s event id (evt_...).';
comment on column public.stripe_events.type is 'Event type, e.g. checkout.session.completed.';
comment on column public.stripe_events.purchase_id is 'The purchase it concerned, when known.';
comment on column public.stripe_events.payment_intent is 'The PaymentIntent it named, if any.';
comment on column public.stripe_events.outcome is
  'What it did: granted, unchanged, failed, expired, review, reversed, restored, ignored, '
  'unmatched (a refund or dispute for a payment not seen yet; applied when it is).';
comment on column public.stripe_events.facts is
  'The fields of the event we act on (amounts, statuses), kept to replay unmatched events.';
comment on column public.stripe_events.received_at is 'When it was first received.';
comment on column public.stripe_events.applied_at is 'When an unmatched event was finally applied.';

create index stripe_events_unmatched_idx on public.stripe_events (payment_intent)
  where outcome = 'unmatched';

-- ---------------------------------------------------------------------------------------------
-- credit_transactions: tied to purchases
-- ---------------------------------------------------------------------------------------------
alter table public.credit_transactions
  add column purchase_id uuid references public.purchases (id),
  add column reference text;
-- The ledger outlives accounts (the books): the baseline's `on delete cascade` from users could
-- wipe it with one delete. Users are now kept as tombstones (0011), so no delete is expected;
-- one that happens anyway fails instead of erasing financial rows.
alter table public.credit_transactions
  drop constraint credit_transactions_user_id_fkey,
  add constraint credit_transactions_user_id_fkey foreign key (user_id) references public.users (id);

comment on column public.credit_transactions.purchase_id is
  'The purchase granted, reversed or restored, for purchase entries.';
comment on column public.credit_transactions.reference is
  'The refund/dispute state a purchase entry reaches (r<amount refunded>/d<dispute status>); '
  'unique per purchase and type, so each state moves credits at most once.';

alter table public.credit_transactions
  drop constraint credit_transactions_type_valid,
  drop constraint credit_transactions_sign;
alter table public.credit_transactions
  add constraint credit_transactions_type_valid check (
    type in ('signup_bonus', 'deduction', 'refund', 'purchase', 'bonus', 'adjustment',
             'purchase_reversal', 'purchase_restore')
  ),
  add constraint credit_transactions_sign check (
    (type in ('deduction', 'purchase_reversal') and amount < 0)
    or (type in ('signup_bonus', 'refund', 'purchase', 'bonus', 'purchase_restore') and amount > 0)
    or type = 'adjustment'
  );

-- A purchase is granted at most once, whatever the code does...
create unique index credit_transactions_one_purchase_grant
  on public.credit_transactions (purchase_id) where type = 'purchase' and purchase_id is not null;
-- ...and each refunded amount or dispute step moves its credits at most once.
create unique index credit_transactions_one_purchase_adjustment
  on public.credit_transactions (purchase_id, type, reference)
  where type in ('purchase_reversal', 'purchase_restore');
