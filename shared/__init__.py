"""The deployed library, in subpackages by concept; imports point only downward:

    core <- db, provider, storage, payments <- flows <- web <- wiring <- functions <- modal_app

A package may import its own modules and the layers below it, never a sibling of its layer
or anything above. Nothing here may import local/, bench/ or tests/ (dev-only), or `modal`
(only modal_app.py does). tests/test_layout.py checks all of this on the import graph.

Importing this package first leaves out the imports a library would make for nothing (httpx's
CLI, httpcore's HTTP/2, PyJWT's X.509) before anything below imports httpx or PyJWT, and freezes
what the process holds so far (`shared.core.startup.lighten_start`).
"""

from shared.core.startup import lighten_start

lighten_start()
