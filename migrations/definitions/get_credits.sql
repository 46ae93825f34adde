-- get_credits: balance and the most recent ledger entries, in one call.
-- The old signature carried defaults, which create or replace cannot take away.
drop function if exists public.get_credits(uuid, integer);
create or replace function public.get_credits(p_user_id uuid, p_limit integer)
returns table (balance integer, transactions jsonb)
language plpgsql stable security definer set search_path = '' as $$
declare v_balance integer;
begin
  perform private.require_between('limit', p_limit, 0, 100);
  select u.credits into v_balance from public.users u where u.id = p_user_id;
  perform private.require_found(found, 'user');
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

comment on function public.get_credits is 'A user''s balance and newest p_limit ledger entries.';
