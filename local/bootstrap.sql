-- =============================================================================================
-- Supabase-compatible bootstrap for a plain PostgreSQL (the local stack and the tests).
--
-- A Supabase project already has all of this; it is applied only to databases that lack the
-- `auth` schema and is NOT part of migrations/. It mirrors what our migrations rely on:
-- the API roles, auth.users, auth.uid()/auth.jwt()/auth.role(), and Supabase's default
-- privileges (every API role gets ALL on new objects in public, which is why the migration
-- runner revokes explicitly, and why RLS matters).
-- =============================================================================================

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
end
$$;

-- The connecting user (postgres) may act as each API role, as on Supabase.
grant anon, authenticated, service_role to current_user;


create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

create table if not exists auth.users (
  instance_id uuid,
  id uuid primary key default gen_random_uuid(),
  aud varchar(255) default 'authenticated',
  role varchar(255) default 'authenticated',
  email varchar(255) unique,
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  phone text unique,
  phone_confirmed_at timestamptz,
  raw_app_meta_data jsonb default '{"provider": "email", "providers": ["email"]}'::jsonb,
  raw_user_meta_data jsonb default '{}'::jsonb,
  is_anonymous boolean not null default false,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

-- Databases bootstrapped before these columns existed get them too (Supabase has them all).
alter table auth.users add column if not exists phone text unique;
alter table auth.users add column if not exists phone_confirmed_at timestamptz;

-- Supabase's definitions: claims come from the request.jwt.claims GUC that PostgREST sets.
create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

-- One claim each: the per-claim setting older PostgREST versions set first, else the claims
-- object (the same answer as Supabase's own bodies, which spell the lookup out twice).
create or replace function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                  auth.jwt() ->> 'sub')::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),
                  auth.jwt() ->> 'role')
$$;

grant execute on function auth.uid(), auth.role(), auth.jwt() to anon, authenticated, service_role;

-- Supabase's default privileges on the public schema.
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
