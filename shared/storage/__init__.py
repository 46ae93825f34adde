"""File storage: the `Storage` port and its shared rules (port), the Supabase Storage adapter
(production) and the local folder adapter (the direct configuration). Serving local files
over HTTP is dev-only and lives in local/.

May import: shared.core. storage3 / supabase are imported lazily by the Supabase adapter.
"""
