"""The Supabase emulator of the local stack (see `local.supabase.app`)."""
