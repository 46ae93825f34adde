"""The HTTP layer: the app factory (errors, CORS, request ids, body limits), FastAPI
dependencies, schemas (the HTTP contract), authentication and webhook signatures, upload
reading. The only part of shared/ that imports FastAPI or Starlette.

May import: shared.core, shared.db, shared.provider, shared.storage, shared.flows. Never the
wiring: an app gets what its handlers use from an opener passed to `create_app`.
"""
