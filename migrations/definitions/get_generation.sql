-- get_generation: the owner's view of one generation (reads go through functions too, so both
-- transports share one path and the owner check lives in SQL). A deleted one is not found.
create or replace function public.get_generation(p_user_id uuid, p_generation_id uuid)
returns table (generation jsonb)
language plpgsql stable security definer set search_path = '' as $$
begin
  return query select to_jsonb(g.*) from public.generations g
   where g.id = p_generation_id and g.user_id = p_user_id and g.deleted_at is null;
  perform private.require_found(found, 'generation');
end
$$;

comment on function public.get_generation is 'The owner''s generation; WN404 for anyone else.';
