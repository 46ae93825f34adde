-- 0012 Copy claims: one copy of a video at a time, and no processing row without a prediction.
--
-- copy_retry_at is when the next copy attempt may start: a claim (the webhook's copy or the
-- sweeper's) moves it past the copy's time limit, so nobody starts a second copy of the same
-- video while the first streams; a failed attempt sets it to the retry delay. A crash mid-copy
-- leaves the claim to expire.
alter table public.generations add column copy_retry_at timestamptz;
comment on column public.generations.copy_retry_at is
  'When the next copy attempt may start (a claim holds it past the copy''s time limit).';

-- A processing generation always names its prediction (the sweeper asks Replicate by it). NOT
-- VALID: enforced on every write from now on, without refusing a database with old rows.
alter table public.generations add constraint generations_processing_has_job
  check (status <> 'processing' or job_id is not null) not valid;
