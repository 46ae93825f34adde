-- public.stripe_events: the service's own record of Stripe events (no policy: no API user
-- reads it). Only the SECURITY DEFINER payment functions write; service_role may read it.
alter table public.stripe_events enable row level security;

revoke all on public.stripe_events from anon, authenticated, service_role;
grant select on public.stripe_events to service_role;
