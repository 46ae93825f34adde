-- private.require_found: the one WN404 every function raises, unless p_found is true; DETAIL
-- names what is missing ("user", "generation" or "purchase"), which the API turns into its
-- message. Callers pass FOUND right after their lookup (or a condition of their own), so "look
-- it up, else not found" is one line everywhere instead of an IF around a raise.
-- It replaced private.raise_not_found(text) (the raise alone); existing databases lose that here.
drop function if exists private.raise_not_found(text);
create or replace function private.require_found(p_found boolean, p_entity text)
returns void
language plpgsql security definer set search_path = '' as $$
begin
  if p_found is not true then
    raise exception using errcode = 'WN404', message = p_entity || ' not found',
      detail = json_build_object('entity', p_entity)::text;
  end if;
end
$$;

comment on function private.require_found is
  'Raise WN404 for a missing user, generation or purchase unless p_found.';
