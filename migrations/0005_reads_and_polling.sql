-- =============================================================================================
-- 0005 Reads for the owner (status with a bounded polling claim, history, credits).
--
-- The status read and its polling claim are one call: the common case (nothing to poll) costs
-- one round trip, and when many browser tabs ask at once only one of them wins the claim and
-- asks the provider.
-- =============================================================================================

-- ---------------------------------------------------------------------------------------------
-- read_generation: the owner's generation; claimed = true when the caller should ask the
-- provider (running, has a job id, nothing heard for p_poll_after_s, fewer than p_max_polls
-- polls so far). The claim stamps last_polled_at, so the next claim waits another interval.
-- ---------------------------------------------------------------------------------------------
create function public.read_generation(
  p_user_id uuid,
  p_generation_id uuid,
  p_poll_after_s integer default 30,
  p_max_polls integer default 20
) returns table (generation jsonb, claimed boolean)
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_row public.generations;
begin
  update public.generations g
     set last_polled_at = now(), poll_attempts = g.poll_attempts + 1
   where g.id = p_generation_id
     and g.user_id = p_user_id
     and g.status in ('queued', 'processing')
     and g.job_id is not null
     and g.poll_attempts < p_max_polls
     and greatest(g.updated_at, g.last_polled_at) <= now() - make_interval(secs => p_poll_after_s)
  returning g.* into v_row;
  if found then
    return query select to_jsonb(v_row), true;
    return;
  end if;
  select * into v_row from public.generations g
   where g.id = p_generation_id and g.user_id = p_user_id;
  if not found then
    perform private.raise_generation_not_found();
  end if;
  return query select to_jsonb(v_row), false;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- list_generations: the owner's generations, newest first, keyset pagination on
-- (created_at, id) so a page costs the same however deep it is.
-- ---------------------------------------------------------------------------------------------
create function public.list_generations(
  p_user_id uuid,
  p_limit integer default 20,
  p_before_created_at timestamptz default null,
  p_before_id uuid default null
) returns table (generation jsonb)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if p_limit is null or p_limit not between 1 and 100 then
    raise exception using errcode = 'WN422', message = 'limit must be 1-100';
  end if;
  if (p_before_created_at is null) <> (p_before_id is null) then
    raise exception using errcode = 'WN422', message = 'cursor is incomplete';
  end if;
  return query
  select to_jsonb(g.*) from public.generations g
   where g.user_id = p_user_id
     and (p_before_created_at is null or (g.created_at, g.id) < (p_before_created_at, p_before_id))
   order by g.created_at desc, g.id desc
   limit p_limit;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- get_credits: balance and the most recent ledger entries, in one call.
-- ---------------------------------------------------------------------------------------------
create function public.get_credits(p_user_id uuid, p_limit integer default 20)
returns table (balance integer, transactions jsonb)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_balance integer;
begin
  if p_limit is null or p_limit not between 0 and 100 then
    raise exception using errcode = 'WN422', message = 'limit must be 0-100';
  end if;
  select u.credits into v_balance from public.users u where u.id = p_user_id;
  if not found then
    raise exception using errcode = 'WN404', message = 'user not found',
      detail = json_build_object('entity', 'user')::text;
  end if;
  return query
  select v_balance, coalesce((
    select jsonb_agg(jsonb_build_object(
             'id', t.id, 'amount', t.amount, 'type', t.type, 'generation_id', t.generation_id,
             'description', t.description, 'created_at', t.created_at)
           order by t.created_at desc, t.id desc)
      from (select * from public.credit_transactions c
             where c.user_id = p_user_id
             order by c.created_at desc, c.id desc
             limit p_limit) t
  ), '[]'::jsonb);
end
$$;

revoke execute on function
  public.read_generation(uuid, uuid, integer, integer),
  public.list_generations(uuid, integer, timestamptz, uuid),
  public.get_credits(uuid, integer)
from public, anon, authenticated;
grant execute on function
  public.read_generation(uuid, uuid, integer, integer),
  public.list_generations(uuid, integer, timestamptz, uuid),
  public.get_credits(uuid, integer)
to service_role;
