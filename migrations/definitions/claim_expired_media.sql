-- claim_expired_media: the retention/purge pass's work list, one bounded batch.
--
-- Finished generations that still hold media (a stored video or input image, or a provider
-- link) and either were deleted (their removal did not finish) or completed more than
-- p_retention_days ago (0 keeps media forever; deleted rows are purged regardless). Oldest
-- first; SKIP LOCKED keeps overlapping passes apart while they read. Removing a file twice is
-- harmless, so no claim stamp is needed. Each row comes with the files to remove (an input
-- image another generation outside the batch still uses stays).
create or replace function public.claim_expired_media(p_retention_days integer, p_limit integer)
returns table (generation jsonb, paths jsonb)
language plpgsql volatile security definer set search_path = '' as $$
declare v_ids uuid[];
begin
  perform private.require_between('retention_days', p_retention_days, 0, null);
  perform private.require_between('limit', p_limit, 1, 10000);
  select array_agg(c.id) into v_ids from (
    select g.id from public.generations g
     where (g.video_path is not null or g.input_image_path is not null or g.video_url is not null)
     and g.completed_at is not null
     and (g.deleted_at is not null
          or (p_retention_days > 0
              and g.completed_at < now() - make_interval(days => p_retention_days)))
     order by g.completed_at, g.id
     limit p_limit
     for no key update skip locked
  ) c;
  return query
  select to_jsonb(g.*), coalesce((
           select to_jsonb(array_agg(r.path))
             from unnest(private.removable_paths(v_ids)) as r(path)
            where r.path in (g.video_path, g.input_image_path)), '[]'::jsonb)
    from public.generations g
   where g.id = any(v_ids)
   order by g.completed_at, g.id;
end
$$;

comment on function public.claim_expired_media(integer, integer) is
  'Finished generations whose media is past retention or deleted, oldest first, at most p_limit.';
