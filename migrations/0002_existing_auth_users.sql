-- =============================================================================================
-- 0002 Existing auth users get their users row (a Supabase project that had sign-ups before
-- this backend was installed).
--
-- The signup trigger only sees new sign-ups; people already in auth.users would have no
-- balance and could not use the API. Each gets the row, and the signup bonus (the default
-- amount, 100) if the trigger would have given it - a confirmed, non-anonymous user - exactly
-- once: only users without a row are added, this file applies once, and a unique index allows
-- one bonus per user.
-- =============================================================================================

with added as (
  insert into public.users (id, email, credits)
  select a.id, a.email,
         case when not a.is_anonymous
                   and coalesce(a.email_confirmed_at, a.phone_confirmed_at) is not null
              then 100 else 0 end
    from auth.users a
   where not exists (select 1 from public.users u where u.id = a.id)
  on conflict (id) do nothing
  returning id, credits
)
insert into public.credit_transactions (user_id, amount, type, description)
select added.id, added.credits, 'signup_bonus', 'Welcome bonus' from added where added.credits > 0;
