-- =============================================================================================
-- 0011 Guardrails: the operator's money and storage (issue 14, DESIGN §10).
--
-- Tables and columns only; the functions that use them are in migrations/definitions/.
--   - users outlive their auth account as tombstones (email cleared), so purchases and the
--     ledger keep their owner for the books;
--   - generations record what they cost at the provider, how their outcome arrived, whether
--     their media expired or the owner deleted them (rows stay: spend and the ledger need them);
--   - the signup bonus is granted once per user (a unique index, whatever the code does);
--   - per-user create slots (the rate limit) and a one-row configuration for the trigger.
-- =============================================================================================

-- ---------------------------------------------------------------------------------------------
-- users: no longer deleted with their auth user (that cascaded into the ledger).
-- ---------------------------------------------------------------------------------------------
-- (By whatever name it has: the same constraint under the name an older schema gave it.)
do $$
declare v_name text;
begin
  for v_name in
    select c.conname from pg_constraint c
     where c.conrelid = 'public.users'::regclass and c.contype = 'f'
       and c.confrelid = 'auth.users'::regclass
  loop
    execute format('alter table public.users drop constraint %I', v_name);
  end loop;
end
$$;
alter table public.users add column deleted_at timestamptz;

comment on column public.users.id is
  'Same id as auth.users.id; the row stays (a tombstone) after the auth user is deleted.';
comment on column public.users.deleted_at is
  'When the account was deleted: email cleared, generations forgotten, ledger kept.';

-- ---------------------------------------------------------------------------------------------
-- generations: provider spend, outcome channel, media lifetime.
-- ---------------------------------------------------------------------------------------------
alter table public.generations
  add column price_per_s numeric(12, 6)
    constraint generations_price_non_negative check (price_per_s >= 0),
  add column predict_time_s double precision
    constraint generations_predict_time_non_negative check (predict_time_s >= 0),
  add column provider_cost_usd numeric(14, 6),
  add column finished_by text constraint generations_finished_by_valid
    check (finished_by in ('webhook', 'poll', 'sweep', 'cancel', 'submit')),
  add column media_expired_at timestamptz,
  add column deleted_at timestamptz;

comment on column public.generations.price_per_s is
  'Estimated provider price in USD per second of predict time (catalog, at creation).';
comment on column public.generations.predict_time_s is
  'The provider''s metrics.predict_time of the final report, in seconds.';
comment on column public.generations.provider_cost_usd is
  'Estimated provider cost: predict_time_s * price_per_s.';
comment on column public.generations.finished_by is
  'Which path applied the terminal state: webhook, poll (status read), sweep, cancel (the '
  'owner''s cancel call) or submit (the provider never accepted it).';
comment on column public.generations.media_expired_at is
  'When the retention pass deleted its stored video and input image.';
comment on column public.generations.deleted_at is
  'When the owner (or the account deletion) deleted it: prompt cleared, media removed; the row '
  'stays for the ledger and the provider spend, invisible to the owner.';

-- Media may now be gone from a completed generation: expired by retention or deleted.
alter table public.generations drop constraint generations_completed_has_video;
alter table public.generations add constraint generations_completed_has_video check (
  status <> 'completed' or video_url is not null or video_path is not null
  or media_expired_at is not null or deleted_at is not null
);

-- The budget guard (every create) and the stats sum spend over a recent window: covering, so
-- the sum is an index-only scan (about 5 ms per 20k generations a day once vacuumed).
create index generations_spend_idx on public.generations (completed_at) include (provider_cost_usd)
  where provider_cost_usd is not null;
-- The retention/purge pass: terminal rows that still hold media (or a link to it).
create index generations_media_idx on public.generations (completed_at)
  where video_path is not null or input_image_path is not null or video_url is not null;
-- Input images are content-addressed and may be shared: who else still uses this file?
create index generations_input_image_idx on public.generations (input_image_path)
  where input_image_path is not null;
-- The stats read finished generations of a window.
create index generations_completed_idx on public.generations (completed_at)
  where completed_at is not null;

-- ---------------------------------------------------------------------------------------------
-- The signup bonus: at most one per user.
-- ---------------------------------------------------------------------------------------------
create unique index credit_transactions_one_signup_bonus
  on public.credit_transactions (user_id) where type = 'signup_bonus';

-- ---------------------------------------------------------------------------------------------
-- private.create_slots: one row per create (or checkout) in the last minute, per user.
-- ---------------------------------------------------------------------------------------------
create table private.create_slots (
  user_id uuid not null,
  taken_at timestamptz not null
);

comment on table private.create_slots is
  'The per-user rate limit''s window: one row per accepted create; rows older than a minute '
  'are pruned by private.take_create_slot.';

create index create_slots_user_taken_idx on private.create_slots (user_id, taken_at);

-- ---------------------------------------------------------------------------------------------
-- private.guardrail_config: values a trigger needs (a trigger takes no arguments). One row;
-- written from settings by public.configure_guardrails at `wanctl migrate` and local start.
-- ---------------------------------------------------------------------------------------------
create table private.guardrail_config (
  id boolean primary key default true constraint guardrail_config_one_row check (id),
  signup_bonus_credits integer not null
    constraint guardrail_config_bonus_non_negative check (signup_bonus_credits >= 0),
  updated_at timestamptz not null default now()
);

comment on table private.guardrail_config is
  'Settings the signup trigger reads; public.configure_guardrails writes them from settings.';

-- The setting's documented default until the first configure_guardrails call.
insert into private.guardrail_config (signup_bonus_credits) values (100);

revoke all on private.create_slots, private.guardrail_config
  from public, anon, authenticated, service_role;
