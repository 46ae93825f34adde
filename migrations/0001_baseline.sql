-- =============================================================================================
-- 0001 Baseline: users, generations and the credit ledger (tables, columns, indexes only).
--
-- Functions, triggers, row-level security, policies and grants are NOT here: each has its one
-- current definition in migrations/definitions/ (re-applied whenever it changes). Only those
-- SECURITY DEFINER functions write these tables; the API roles may at most read their own rows.
--
-- This file replaces the old 0001-0008 (squashed when the definitions moved out); a database
-- migrated with those files is upgraded in place by the runner (shared/db/migrate.py).
-- =============================================================================================

-- A Supabase project may already hold tables of these names (an earlier app, a tutorial).
-- Creating ours over them would fail half way or, worse, adopt a table of another shape: stop
-- first and say what to do.
do $$
declare
  v_found text;
begin
  select string_agg(format('public.%I', c.relname), ', ' order by c.relname) into v_found
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'public' and c.relname in ('users', 'generations', 'credit_transactions');
  if v_found is not null then
    raise exception using errcode = 'duplicate_table',
      message = format('%s already exist(s) and was not made by these migrations', v_found),
      hint = 'Keep its data elsewhere first (e.g. alter table public.users set schema backup; '
             'after "create schema backup"), or drop it if it is not needed, then run '
             'wanctl migrate again.';
  end if;
end
$$;


-- Internal helpers live here: not exposed through PostgREST, not executable by the API roles.
create schema if not exists private;
revoke all on schema private from public;

-- ---------------------------------------------------------------------------------------------
-- users
-- ---------------------------------------------------------------------------------------------
create table public.users (
  id uuid primary key references auth.users (id) on delete cascade,
  email text,
  credits integer not null default 0 constraint users_credits_non_negative check (credits >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table public.users is
  'One row per signed-up person; created by the signup trigger on auth.users.';
comment on column public.users.id is 'Same id as auth.users.id.';
comment on column public.users.email is 'Copied from auth.users at signup, for support and display.';
comment on column public.users.credits is
  'Spendable balance. Always equals the sum of this user''s credit_transactions amounts.';
comment on column public.users.created_at is 'When the row was created (signup).';
comment on column public.users.updated_at is 'When the balance or profile last changed.';

-- ---------------------------------------------------------------------------------------------
-- generations
-- ---------------------------------------------------------------------------------------------
create table public.generations (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  kind text not null constraint generations_kind_valid check (kind in ('t2v', 'i2v')),
  model text not null,
  resolution text not null,
  prompt text not null,
  negative_prompt text,
  params jsonb not null default '{}'::jsonb,
  input_image_path text,
  cost integer not null constraint generations_cost_positive check (cost > 0),
  status text not null default 'queued' constraint generations_status_valid
    check (status in ('queued', 'processing', 'completed', 'failed', 'canceled')),
  progress smallint not null default 0 constraint generations_progress_range
    check (progress between 0 and 100),
  job_id text constraint generations_job_id_unique unique,
  video_url text,
  video_path text,
  error_message text,
  idempotency_key text,
  request_hash text not null,
  retry_of uuid references public.generations (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  started_at timestamptz,
  completed_at timestamptz,
  last_polled_at timestamptz,
  poll_attempts integer not null default 0,
  cancel_requested_at timestamptz,
  copy_attempts integer not null default 0,
  copy_claimed_at timestamptz,
  copy_error text,
  constraint generations_idempotency_key_unique unique (user_id, idempotency_key),
  constraint generations_completed_has_video
    check (status <> 'completed' or video_url is not null or video_path is not null)
);

comment on table public.generations is
  'One video generation request; its status only moves forward, terminal states never change.';
comment on column public.generations.id is 'Our id; also carried in the provider webhook URL.';
comment on column public.generations.user_id is 'The owner, who paid for it.';
comment on column public.generations.kind is 't2v (text-to-video) or i2v (image-to-video).';
comment on column public.generations.model is 'Catalog model name, e.g. t2v-14B.';
comment on column public.generations.resolution is 'Catalog resolution, e.g. 480p or 720p.';
comment on column public.generations.prompt is 'The user''s prompt (10-500 characters).';
comment on column public.generations.negative_prompt is 'Optional negative prompt.';
comment on column public.generations.params is 'Other validated inputs (seed, aspect_ratio, ...).';
comment on column public.generations.input_image_path is 'Storage path of the i2v input image.';
comment on column public.generations.cost is 'Credits charged for it, from the catalog.';
comment on column public.generations.status is
  'queued -> processing -> completed | failed | canceled.';
comment on column public.generations.progress is 'Percent done, 0-100, never decreases.';
comment on column public.generations.job_id is 'The provider''s prediction id, once created.';
comment on column public.generations.video_url is
  'The provider''s output URL; expires (Replicate deletes API outputs after one hour).';
comment on column public.generations.video_path is 'Path of our own copy of the video.';
comment on column public.generations.error_message is 'Why it failed or was canceled.';
comment on column public.generations.idempotency_key is
  'The client''s Idempotency-Key, unique per user; a replay returns this row.';
comment on column public.generations.request_hash is
  'Fingerprint of the request; the same key with a different fingerprint is a conflict.';
comment on column public.generations.retry_of is 'The failed or canceled generation this retries.';
comment on column public.generations.created_at is 'When it was requested and charged.';
comment on column public.generations.updated_at is 'When anything about it last changed.';
comment on column public.generations.started_at is 'When the provider accepted it.';
comment on column public.generations.completed_at is 'When it reached a terminal state.';
comment on column public.generations.last_polled_at is
  'When we last asked the provider about it (sweeper or status fallback).';
comment on column public.generations.poll_attempts is 'How many times we asked the provider.';
comment on column public.generations.cancel_requested_at is 'When the owner asked to cancel.';
comment on column public.generations.copy_attempts is 'How many times we tried to copy the video.';
comment on column public.generations.copy_claimed_at is 'When a copy attempt last started.';
comment on column public.generations.copy_error is 'Why the last copy attempt failed.';

create index generations_user_created_idx on public.generations (user_id, created_at desc, id desc);
-- The sweeper's work list: only live rows are indexed, so its cost grows with them, not history.
create index generations_live_idx on public.generations ((greatest(updated_at, last_polled_at)))
  where status in ('queued', 'processing');
create index generations_live_user_idx on public.generations (user_id)
  where status in ('queued', 'processing');
create index generations_retry_of_idx on public.generations (retry_of) where retry_of is not null;
-- Videos still to be copied into our storage (the sweeper's copy work list).
create index generations_pending_copy_idx on public.generations (completed_at)
  where status = 'completed' and video_path is null;

-- ---------------------------------------------------------------------------------------------
-- credit_transactions: the append-only ledger
-- ---------------------------------------------------------------------------------------------
create table public.credit_transactions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  amount integer not null constraint credit_transactions_amount_nonzero check (amount <> 0),
  type text not null constraint credit_transactions_type_valid check (
    type in ('signup_bonus', 'deduction', 'refund', 'purchase', 'bonus', 'adjustment')
  ),
  generation_id uuid references public.generations (id) on delete set null,
  description text,
  created_at timestamptz not null default now(),
  constraint credit_transactions_sign check (
    (type = 'deduction' and amount < 0)
    or (type in ('signup_bonus', 'refund', 'purchase', 'bonus') and amount > 0)
    or type = 'adjustment'
  )
);

comment on table public.credit_transactions is
  'Append-only ledger: every change of users.credits is one row here, in the same transaction.';
comment on column public.credit_transactions.id is 'Entry id.';
comment on column public.credit_transactions.user_id is 'Whose balance changed.';
comment on column public.credit_transactions.amount is 'Signed change: negative spends.';
comment on column public.credit_transactions.type is
  'signup_bonus, deduction, refund, purchase, bonus or adjustment.';
comment on column public.credit_transactions.generation_id is
  'The generation charged or refunded, for deduction and refund entries.';
comment on column public.credit_transactions.description is 'Human-readable reason.';
comment on column public.credit_transactions.created_at is 'When the entry was written.';

create index credit_transactions_user_created_idx
  on public.credit_transactions (user_id, created_at desc);
-- A generation is charged at most once and refunded at most once, whatever the code does.
create unique index credit_transactions_one_deduction
  on public.credit_transactions (generation_id) where type = 'deduction';
create unique index credit_transactions_one_refund
  on public.credit_transactions (generation_id) where type = 'refund';
