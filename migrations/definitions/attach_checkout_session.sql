-- public.attach_checkout_session: remember the Checkout Session created for a purchase.
-- Idempotent: the same session again changes nothing; a different one is a conflict (WN409),
-- which cannot happen while sessions are created with the purchase id as Stripe's
-- idempotency key.
create or replace function public.attach_checkout_session(
  p_purchase_id uuid, p_session_id text, p_checkout_url text
) returns table (purchase jsonb)
language plpgsql volatile security definer set search_path = '' as $$
declare v_row public.purchases;
begin
  if p_session_id is null or length(p_session_id) not between 1 and 255 then
    raise exception using errcode = 'WN422', message = 'session id must be 1-255 characters';
  end if;
  v_row := private.lock_purchase(p_purchase_id);
  if v_row.session_id is not null and v_row.session_id <> p_session_id then
    raise exception using errcode = 'WN409', message = 'purchase already has another session';
  end if;
  if v_row.session_id is null then
    update public.purchases
       set session_id = p_session_id, checkout_url = p_checkout_url, updated_at = now()
     where id = p_purchase_id
    returning * into v_row;
  end if;
  return query select to_jsonb(v_row);
end
$$;

comment on function public.attach_checkout_session(uuid, text, text) is
  'Record the Checkout Session id and URL of a purchase (once).';
