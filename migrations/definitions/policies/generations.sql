-- public.generations: what API users may read. Only the SECURITY DEFINER functions (run as
-- the owner) write; the owner reads their own rows, but not our bookkeeping: the request
-- fingerprint, the provider's job id and expiring URL, the polling and copy counters. A new
-- column is hidden until it is added to this list.
-- (The migration runner, shared/db/migrate.py, has already turned RLS on and left service_role's
-- SELECT as the only privilege.)

grant select (
  id, user_id, kind, model, resolution, prompt, negative_prompt, params, input_image_path, cost,
  status, progress, video_path, error_message, idempotency_key, retry_of, created_at, updated_at,
  started_at, completed_at, cancel_requested_at
) on public.generations to authenticated;

drop policy if exists generations_select_own on public.generations;
create policy generations_select_own on public.generations
  for select to authenticated using (user_id = (select auth.uid()));
