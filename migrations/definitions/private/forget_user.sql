-- private.forget_user: an account's personal data goes; its financial rows stay.
--
-- Live generations are canceled and refunded now (the ledger invariants hold), every
-- generation is tombstoned (prompt, negative prompt, provider link and idempotency key
-- cleared; deleted_at set), the users row keeps its id, balance and ledger but loses its email.
-- Returns {"paths": [stored files to remove], "job_ids": [predictions to cancel],
-- "generation_ids": [the user's generations, for release_media]}; the paths
-- stay on the rows until public.release_media records them removed, so the reconciliation
-- pass finishes a removal that was interrupted. Idempotent.
--
-- Purchases and their ledger rows stay (the books), without the client's idempotency keys.
-- Lock order as everywhere: generations (by id), purchases (by id; the payment functions lock
-- a purchase before its user), then the user.
create or replace function private.forget_user(p_user_id uuid, p_reason text)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare v_live uuid;
  v_jobs text[];
  v_paths text[];
  v_ids uuid[];
begin
  perform 1 from public.generations g
   where g.user_id = p_user_id and g.status in ('queued', 'processing')
   order by g.id for no key update;
  perform 1 from public.purchases p where p.user_id = p_user_id order by p.id for no key update;
  perform 1 from public.users u where u.id = p_user_id for no key update;

  select coalesce(array_agg(g.job_id order by g.id) filter (where g.job_id is not null), '{}')
    into v_jobs
    from public.generations g
   where g.user_id = p_user_id and g.status in ('queued', 'processing');
  for v_live in
    select g.id from public.generations g
     where g.user_id = p_user_id and g.status in ('queued', 'processing')
     order by g.id for no key update
  loop
    update public.generations g
       set status = 'canceled', error_message = p_reason, finished_by = 'cancel',
           cancel_requested_at = coalesce(g.cancel_requested_at, now()),
           completed_at = now(), updated_at = now()
     where g.id = v_live;
    perform private.refund(v_live, 'Refund: ' || lower(p_reason));
  end loop;

  select coalesce(array_agg(g.id order by g.id), '{}') into v_ids
    from public.generations g where g.user_id = p_user_id;
  select coalesce(array_agg(distinct p.path order by p.path), '{}') into v_paths
    from (
      select unnest(array[g.video_path, g.input_image_path]) as path
        from public.generations g where g.user_id = p_user_id
    ) p
   where p.path is not null;

  update public.generations g
     set deleted_at = coalesce(g.deleted_at, now()), prompt = '', negative_prompt = null,
         video_url = null, idempotency_key = null, request_hash = '', params = '{}'::jsonb,
         updated_at = now()
   where g.user_id = p_user_id;
  update public.purchases p set idempotency_key = null, updated_at = now()
   where p.user_id = p_user_id and p.idempotency_key is not null;
  update public.users u
     set email = null, deleted_at = coalesce(u.deleted_at, now()), updated_at = now()
   where u.id = p_user_id;
  delete from private.create_slots s where s.user_id = p_user_id;
  return jsonb_build_object(
    'paths', to_jsonb(v_paths), 'job_ids', to_jsonb(v_jobs), 'generation_ids', to_jsonb(v_ids));
end
$$;

comment on function private.forget_user(uuid, text) is
  'Cancel and refund live generations, tombstone all of them and the user (email cleared); '
  'returns the stored paths to remove and the predictions to cancel.';
