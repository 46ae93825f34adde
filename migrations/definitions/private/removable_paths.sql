-- private.removable_paths: the stored files of these generations that no other generation
-- still uses. Input images are content-addressed (the same upload twice is one file), so an
-- input path may be shared; it goes only with its last user (release_media clears the paths of
-- the rows it releases, so the last one finds nobody else).
create or replace function private.removable_paths(p_generation_ids uuid[])
returns text[]
language sql stable security definer set search_path = '' as $$
  select coalesce(array_agg(distinct p.path order by p.path), '{}')
    from (
      select g.video_path as path from public.generations g
       where g.id = any(p_generation_ids) and g.video_path is not null
      union
      select g.input_image_path from public.generations g
       where g.id = any(p_generation_ids) and g.input_image_path is not null
         and not exists (
           select 1 from public.generations o
            where o.input_image_path = g.input_image_path
              and not (o.id = any(p_generation_ids)))
    ) p
$$;
