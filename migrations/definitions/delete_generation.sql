-- delete_generation: the owner deletes a finished generation (DELETE /api/generation/{id}).
--
-- The row stays as a tombstone (its ledger rows and provider spend must outlive it, or deleting
-- would reset the budget), invisible to the owner from now on: prompt cleared, deleted_at set.
-- Returns the row and the stored files to remove (not an input image another generation still
-- uses), which the caller removes and then records with release_media (the reconciliation pass finishes an interrupted removal).
--   WN404 not the caller's, or already deleted    WN412 still running ("cancel it first")
create or replace function public.delete_generation(p_user_id uuid, p_generation_id uuid)
returns table (generation jsonb, paths jsonb)
language plpgsql volatile security definer set search_path = '' as $$
declare v_row public.generations;
begin
  select * into v_row from public.generations g
   where g.id = p_generation_id and g.user_id = p_user_id and g.deleted_at is null
   for no key update;
  perform private.require_found(found, 'generation');
  if v_row.status not in ('completed', 'failed', 'canceled') then
    raise exception using errcode = 'WN412',
      message = 'the generation is still running; cancel it first',
      detail = json_build_object('status', v_row.status)::text;
  end if;
  update public.generations g
     set deleted_at = now(), prompt = '', negative_prompt = null, video_url = null,
         idempotency_key = null, request_hash = '', params = '{}'::jsonb, updated_at = now()
   where g.id = p_generation_id
  returning * into v_row;
  return query select to_jsonb(v_row), to_jsonb(private.removable_paths(array[v_row.id]));
end
$$;

comment on function public.delete_generation(uuid, uuid) is
  'Tombstone the owner''s finished generation (prompt cleared); returns it with the stored '
  'paths to remove.';
