"""The deployed library, in subpackages by concept; imports point only downward:

    core <- db, provider, storage, payments <- flows <- web <- wiring <- functions <- modal_app

A package may import its own modules and the layers below it, never a sibling of its layer
or anything above. Nothing here may import local/, bench/ or tests/ (dev-only), or `modal`
(only modal_app.py does). tests/test_layout.py checks all of this on the import graph.
"""
