"""The function's init phase without cyclic garbage collection, and its objects frozen after it.

Imported first by ``llm_router.edge.handler`` in Lambda (``AWS_LAMBDA_FUNCTION_NAME`` set), so that
importing botocore, Powertools and the router, reading the configuration, loading the index and
making the Bedrock client the first request uses (``build_service(warm_client=True)``) run with
the cyclic garbage collector paused; :func:`finish`, once the router is built, moves every object
made so far into the permanent generation (``gc.freeze``) and resumes collection.

Why: an import makes hundreds of thousands of long-lived objects (modules, functions, botocore's
models), and the collector, which triggers on allocations, walks them again and again while they
are made: 20 ms of every llm-assisted cold start and about 60 ms of a semantic one (one full
collection alone is ~30 ms), measured here with ``gc.callbacks``, for objects that live as long
as the process. Frozen, they are also never walked again by the collections that requests
trigger. What is given up: cyclic garbage made during init (about 600 objects, 130 KB, for either
router here; ``tests/test_cold_start_levers.py`` bounds it) stays in memory for the life of the
instance instead of being collected. Outside Lambda (tests, the local server, scripts) nothing
changes.
"""

from __future__ import annotations

import gc
import os

IN_LAMBDA = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))
_paused = IN_LAMBDA and gc.isenabled()
if _paused:
    gc.disable()


def finish() -> None:
    """End of init: freeze what init made and let the collector run again (once)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
