-- configure_guardrails: write the settings that database code without arguments (the signup
-- trigger) needs. Called by `wanctl migrate` and by the local stack at start, from settings.
create or replace function public.configure_guardrails(p_signup_bonus_credits integer)
returns table (signup_bonus_credits integer)
language plpgsql volatile security definer set search_path = '' as $$
begin
  if p_signup_bonus_credits is null or p_signup_bonus_credits not between 0 and 1000000 then
    raise exception using errcode = 'WN422', message = 'signup bonus must be 0-1000000';
  end if;
  insert into private.guardrail_config as c (id, signup_bonus_credits, updated_at)
  values (true, p_signup_bonus_credits, now())
  on conflict (id) do update
    set signup_bonus_credits = excluded.signup_bonus_credits, updated_at = now();
  return query select c.signup_bonus_credits from private.guardrail_config c;
end
$$;

comment on function public.configure_guardrails(integer) is
  'Store SIGNUP_BONUS_CREDITS for the signup trigger.';
