-- private.require_text: the one presence check of the functions' text arguments (ids, paths):
-- WN422 "<name> is required" when the value is missing or empty.
create or replace function private.require_text(p_name text, p_value text)
returns void
language plpgsql immutable security definer set search_path = '' as $$
begin
  if p_value is null or p_value = '' then
    raise exception using errcode = 'WN422', message = p_name || ' is required';
  end if;
end
$$;

comment on function private.require_text is 'Raise WN422 when p_value is null or empty.';
