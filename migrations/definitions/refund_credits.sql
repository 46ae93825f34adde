-- refund_credits: give back a failed or canceled generation's charge, exactly once.
create or replace function public.refund_credits(p_generation_id uuid)
returns table (refunded integer, balance integer)
language plpgsql volatile security definer set search_path = '' as $$
declare v_row public.generations;
  v_refunded integer;
begin
  -- Lock the generation so a refund cannot race its own state change.
  v_row := private.lock_generation(p_generation_id, null);
  if v_row.status not in ('failed', 'canceled') then
    raise exception using errcode = 'WN412',
      message = 'only a failed or canceled generation can be refunded',
      detail = json_build_object('status', v_row.status)::text;
  end if;
  v_refunded := private.refund(p_generation_id, 'Refund');
  return query select v_refunded, u.credits from public.users u where u.id = v_row.user_id;
end
$$;

comment on function public.refund_credits is
  'Refund a failed or canceled generation; a second call refunds nothing (refunded = 0).';
