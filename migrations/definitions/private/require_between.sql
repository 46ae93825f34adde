-- private.require_between: the one range check of the functions' integer arguments (limits,
-- intervals): WN422 "<name> must be <min>-<max>" (or ">= <min>" without a maximum) when the
-- value is missing or out of range.
create or replace function private.require_between(
  p_name text, p_value integer, p_min integer, p_max integer
) returns void
language plpgsql immutable security definer set search_path = '' as $$
begin
  if p_value is null or p_value < p_min or p_value > p_max then
    raise exception using errcode = 'WN422', message = case
      when p_max is null then format('%s must be >= %s', p_name, p_min)
      else format('%s must be %s-%s', p_name, p_min, p_max) end;
  end if;
end
$$;

comment on function private.require_between is
  'Raise WN422 unless p_min <= p_value <= p_max (p_max null: no upper bound).';
