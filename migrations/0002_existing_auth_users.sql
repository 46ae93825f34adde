-- =============================================================================================
-- 0002 Existing auth users get their users row (a Supabase project that had sign-ups before
-- this backend was installed).
--
-- The signup trigger only sees new sign-ups; people already in auth.users would have no
-- balance and could not use the API. Each gets the row and the signup bonus the trigger would
-- have given, exactly once: only users without a row are added, and this file applies once.
-- =============================================================================================

with added as (
  insert into public.users (id, email, credits)
  select a.id, a.email, 100 from auth.users a
   where not exists (select 1 from public.users u where u.id = a.id)
  on conflict (id) do nothing
  returning id
)
insert into public.credit_transactions (user_id, amount, type, description)
select added.id, 100, 'signup_bonus', 'Welcome bonus' from added;
