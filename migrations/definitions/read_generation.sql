-- read_generation: the owner's generation, with a bounded polling claim in the same call: the
-- common case (nothing to poll) costs one round trip and one index lookup, and when many
-- browser tabs ask at once only one of them wins the claim and asks the provider. A deleted
-- generation is not found.
--
-- claimed = true when the caller should ask the provider (private.claim_poll: running, has a
-- job id, nothing heard for p_poll_after_s, fewer than p_max_polls polls so far). Many reads
-- at once go through read_generations instead, one call for all of them.
-- The old signature carried defaults, which create or replace cannot take away.
drop function if exists public.read_generation(uuid, uuid, integer, integer);
create or replace function public.read_generation(
  p_user_id uuid, p_generation_id uuid, p_poll_after_s integer, p_max_polls integer
) returns table (generation jsonb, claimed boolean)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_row public.generations;
  v_claimed public.generations;
begin
  -- Every open tab polls: the common read is one index lookup, with no write attempted.
  select * into v_row from public.generations g
   where g.id = p_generation_id and g.user_id = p_user_id and g.deleted_at is null;
  perform private.require_found(found, 'generation');
  -- Nothing heard for a while: try the claim, which checks everything again under the row
  -- lock (another tab may have claimed it meanwhile).
  if greatest(v_row.updated_at, v_row.last_polled_at)
     <= now() - make_interval(secs => p_poll_after_s) then
    v_claimed := private.claim_poll(p_generation_id, p_user_id, p_poll_after_s, p_max_polls);
    if v_claimed.id is not null then
      return query select to_jsonb(v_claimed), true;
      return;
    end if;
  end if;
  return query select to_jsonb(v_row), false;
end
$$;

comment on function public.read_generation is
  'The owner''s generation and whether this caller won the claim to poll the provider.';
