-- mark_submitted: the provider accepted the prediction; queued -> processing with its job id.
-- changed = false when the row had already moved on (a webhook or the sweeper got there first);
-- the caller then compares job ids to decide whether its prediction is an orphan to cancel.
create or replace function public.mark_submitted(p_generation_id uuid, p_job_id text)
returns table (generation jsonb, changed boolean)
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform private.require_text('job_id', p_job_id);
  perform private.lock_generation(p_generation_id, null);
  -- Only a queued row without a job id moves (the update's condition); any other comes back as
  -- it is (FOUND is false).
  update public.generations g
     set status = 'processing', job_id = p_job_id, started_at = coalesce(g.started_at, now()),
         updated_at = now()
   where g.id = p_generation_id and g.status = 'queued' and g.job_id is null;
  return query select to_jsonb(g.*), found from public.generations g where g.id = p_generation_id;
end
$$;

comment on function public.mark_submitted is
  'queued -> processing with the provider''s job id; changed = false when it had moved on.';
