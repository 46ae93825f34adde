"""The use cases, over ports (database, provider, storage, clock, copy scheduler) passed in:
submit / cancel / retry / read (lifecycle), apply provider updates, keep videos (keeper,
outputs), link them (links), take input images (inputs), reconcile (the sweep).

May import: shared.core, and the ports and value types of shared.db, shared.provider and
shared.storage. Never the web layer, the wiring or an HTTP framework.
"""
