-- record_copy_failure: remember why a copy failed; a failure that cannot get better (the
-- provider deleted the file, it is not a video, it is too big) ends the attempts; one that can
-- releases the claim, so the sweeper tries again after p_retry_after_s.
drop function if exists public.record_copy_failure(uuid, text, boolean);
create or replace function public.record_copy_failure(
  p_generation_id uuid, p_error text, p_retryable boolean, p_retry_after_s integer
) returns table (generation jsonb)
language plpgsql volatile security definer set search_path = '' as $$
declare v_row public.generations;
begin
  update public.generations g
     set copy_error = left(coalesce(p_error, 'copy failed'), 1000),
         copy_attempts = case when p_retryable then g.copy_attempts else 1000000 end,
         copy_retry_at = now() + make_interval(secs => greatest(coalesce(p_retry_after_s, 0), 0))
   where g.id = p_generation_id
  returning g.* into v_row;
  perform private.require_found(found, 'generation');
  return query select to_jsonb(v_row);
end
$$;

comment on function public.record_copy_failure is
  'Record a failed copy attempt; a failure that is not retryable ends the attempts.';
