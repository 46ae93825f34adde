-- set_video_path: our own copy of a completed generation's video exists.
create or replace function public.set_video_path(p_generation_id uuid, p_video_path text)
returns table (generation jsonb, changed boolean)
language plpgsql volatile security definer set search_path = '' as $$
declare v_row public.generations;
begin
  perform private.require_text('video_path', p_video_path);
  v_row := private.lock_generation(p_generation_id, null);
  if v_row.status <> 'completed' then
    raise exception using errcode = 'WN412', message = 'only a completed generation has a video',
      detail = json_build_object('status', v_row.status)::text;
  end if;
  -- The first path stays: a second copy's path changes nothing (FOUND is false).
  update public.generations g set video_path = p_video_path, updated_at = now()
   where g.id = p_generation_id and g.video_path is null;
  return query select to_jsonb(g.*), found from public.generations g where g.id = p_generation_id;
end
$$;

comment on function public.set_video_path is
  'Record where our copy of a completed generation''s video is; the first path stays.';
