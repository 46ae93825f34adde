"""One module per endpoint group (one Modal web function each) plus the two jobs (the sweep and
the video copy). Each `create_app()` builds a FastAPI app from shared.wiring's builder for
that group; HTTP only, no business logic.

May import: shared (any layer). Never local/, bench/ or tests/, never `modal`.
"""
