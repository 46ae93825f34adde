-- private.raise_not_found: the one WN404 every function raises; DETAIL names what is missing
-- ("user", "generation" or "purchase"), which the API turns into its message.
create or replace function private.raise_not_found(p_entity text)
returns void
language plpgsql security definer set search_path = '' as $$
begin
  raise exception using errcode = 'WN404', message = p_entity || ' not found',
    detail = json_build_object('entity', p_entity)::text;
end
$$;

comment on function private.raise_not_found is 'Raise WN404 for a missing user, generation or purchase.';
revoke all on function private.raise_not_found(text) from public, anon, authenticated, service_role;
