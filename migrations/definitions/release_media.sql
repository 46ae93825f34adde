-- release_media: the files of these generations are removed from storage; forget their paths
-- and provider link. One that was not deleted by its owner is marked expired (status and
-- history say so instead of showing a broken link). Returns how many rows changed.
create or replace function public.release_media(p_generation_ids uuid[])
returns table (released integer)
language plpgsql volatile security definer set search_path = '' as $$
declare v_count integer;
begin
  if p_generation_ids is null or cardinality(p_generation_ids) > 10000 then
    raise exception using errcode = 'WN422', message = 'ids must be a list of at most 10000';
  end if;
  update public.generations g
     set video_path = null, input_image_path = null, video_url = null,
         media_expired_at = case when g.deleted_at is null then now() end,
         updated_at = now()
   where g.id = any(p_generation_ids)
     and g.completed_at is not null
     and (g.video_path is not null or g.input_image_path is not null or g.video_url is not null);
  get diagnostics v_count = row_count;
  return query select v_count;
end
$$;

comment on function public.release_media(uuid[]) is
  'Record that these finished generations'' files are gone (expired unless deleted).';
