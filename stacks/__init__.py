"""The CDK side of the router: one stack per routing strategy, built from ``routes.json``.

Importing this package puts ``lambdas/`` and ``scripts/`` on sys.path (see
:func:`layers.ensure_import_paths`), so the stacks read the same ``llm_router`` code and
configuration loader the Lambda runs.
"""

from layers import ensure_import_paths

ensure_import_paths()
