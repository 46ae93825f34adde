"""Never deployed: the embedded PostgreSQL, Supabase bootstrap, the Replicate emulator, the dev
server (every endpoint in one app, plus signed links to local files), token minting and the
`wanctl` CLI.

May import: shared and functions. Nothing deployed imports this package.
"""
