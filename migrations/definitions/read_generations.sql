-- read_generations: many status reads in one call (every open tab polls GET status).
--
-- The API gathers the reads that arrive while its previous call runs and sends them together
-- (shared/db/batching.py); each pair (p_user_ids[i], p_generation_ids[i]) is one read, answered
-- as read_generation answers it: the owner's generation and whether this caller won the claim
-- to poll the provider (private.claim_poll), in the row with idx = i - 1. A read of a missing,
-- deleted or someone else's generation answers a null generation (the API's 404 for that read
-- alone). The same generation asked twice is claimed at most once.
--
-- Lock order: claims are taken in generation-id order, so two batches never wait for each other
-- in a circle; the common read (nothing overdue) takes no lock and writes nothing.
create or replace function public.read_generations(
  p_user_ids uuid[], p_generation_ids uuid[], p_poll_after_s integer, p_max_polls integer
) returns table (idx integer, generation jsonb, claimed boolean)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v record;
  v_claimed public.generations;
begin
  if cardinality(p_user_ids) is distinct from cardinality(p_generation_ids)
     or cardinality(p_generation_ids) > 1000 then
    raise exception using errcode = 'WN422',
      message = 'reads must be as many user ids as generation ids, at most 1000';
  end if;
  for v in
    select a.ord, g.id, g.user_id, to_jsonb(g.*) as found,
           greatest(g.updated_at, g.last_polled_at)
             <= now() - make_interval(secs => p_poll_after_s) as overdue
      from unnest(p_user_ids, p_generation_ids) with ordinality as a(user_id, id, ord)
      left join public.generations g
        on g.id = a.id and g.user_id = a.user_id and g.deleted_at is null
     order by a.id, a.ord
  loop
    idx := v.ord - 1;
    generation := v.found;
    claimed := false;
    if v.overdue then
      v_claimed := private.claim_poll(v.id, v.user_id, p_poll_after_s, p_max_polls);
      if v_claimed.id is not null then
        generation := to_jsonb(v_claimed);
        claimed := true;
      end if;
    end if;
    return next;
  end loop;
end
$$;

comment on function public.read_generations is
  'read_generation for many (user, generation) pairs in one call; a null generation: not found.';
