"""The database: the port the flows call (`port.Database`), its adapter `rpc.Rpc` (one method
per SQL function), the payment functions' `purchases.PurchaseStore`, the Postgres (psycopg)
and Supabase (PostgREST RPC) transports, the one SQLSTATE -> error table, update batching and
the migration runner.

May import: shared.core. Client libraries (psycopg, supabase) are imported lazily, when a
transport opens.
"""
