-- apply_predictions: many provider updates in one call (webhook ingestion under load).
--
-- Replicate posts a `logs` update about twice a second for every running prediction, so the
-- API gathers the updates that arrive while its previous call runs and sends them together
-- (shared/db/batching.py). Each item goes through public.apply_prediction itself -- the same
-- state machine, the same refund-once rule -- inside a subtransaction of its own, so one item's
-- error (unknown generation, invalid update) rolls back that item only and is returned in its
-- row; the others still apply. Items keep their order: two updates of one generation in one
-- batch apply as they arrived.
--
-- Lock order, so that batches cannot deadlock with each other or with the single-row functions
-- (which take a generation, then, to refund, its user): items are applied in generation-id
-- order (arrival order within one generation), so a batch takes generations in id order; and a
-- batch that may refund (a failed or canceled item) first locks all its generations, then
-- those users, each in id order, so it never waits for a generation while it holds a user.
-- Every lock is FOR NO KEY UPDATE (see private.lock_generation): a retry's foreign-key check
-- on the generation it retries does not wait for it. Most batches are progress updates, which
-- touch no user and skip the pre-locking.
--
-- Each item may also carry `source` and `predict_time`, passed on to apply_prediction.
create or replace function public.apply_predictions(p_updates jsonb)
returns table (
  idx integer,
  generation jsonb,
  changed boolean,
  refunded integer,
  error_code text,
  error_message text
)
language plpgsql volatile security definer set search_path = '' as $$
declare v_item jsonb;
  v_idx bigint;
  v_applied record;
  v_ids uuid[];
  v_refund_ids uuid[];
begin
  if jsonb_typeof(p_updates) is distinct from 'array' or jsonb_array_length(p_updates) > 1000 then
    raise exception using errcode = 'WN422', message = 'updates must be an array of at most 1000';
  end if;

  -- Well-formed ids only: a malformed one fails its own item below, not the whole call.
  select array_agg((e ->> 'generation_id')::uuid),
         array_agg((e ->> 'generation_id')::uuid) filter (
           where e ->> 'status' in ('failed', 'canceled'))
    into v_ids, v_refund_ids
    from jsonb_array_elements(p_updates) as e
   where e ->> 'generation_id'
         ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
  if v_refund_ids is not null then
    perform 1 from public.generations g where g.id = any(v_ids) order by g.id
      for no key update;
    perform 1 from public.users u
     where u.id in (select g.user_id from public.generations g where g.id = any(v_refund_ids))
     order by u.id for no key update;
  end if;

  for v_item, v_idx in
    select e.value, e.ordinality from jsonb_array_elements(p_updates) with ordinality as e
     order by lower(e.value ->> 'generation_id') collate "C", e.ordinality
  loop
    idx := v_idx - 1;  -- 0-based, as the caller's list
    begin
      select * into strict v_applied from public.apply_prediction(
        p_generation_id => (v_item ->> 'generation_id')::uuid,
        p_status => v_item ->> 'status',
        p_job_id => v_item ->> 'job_id',
        p_progress => (v_item ->> 'progress')::integer,
        p_video_url => v_item ->> 'video_url',
        p_error => v_item ->> 'error',
        p_source => v_item ->> 'source',
        p_predict_time => (v_item ->> 'predict_time')::double precision
      );
      generation := v_applied.generation;
      changed := v_applied.changed;
      refunded := v_applied.refunded;
      error_code := null;
      error_message := null;
    exception when others then  -- not query_canceled: a statement timeout ends the whole call
      generation := null;
      changed := false;
      refunded := 0;
      get stacked diagnostics error_code = returned_sqlstate, error_message = message_text;
    end;
    return next;
  end loop;
end;
$$;

comment on function public.apply_predictions is
  'apply_prediction for each item of a JSON array, each in its own subtransaction; one row per '
  'item (0-based idx) with the result or the item''s SQLSTATE and message.';
