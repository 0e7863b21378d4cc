"""Lambda layer builds without Docker: pip wheels for the Lambda platform plus generated content.

``build`` is the generic builder (any requirements file, architecture and Python version);
``index_content`` adds the semantic router's reference index to a layer. Neither imports the CDK,
so a layer can also be built from the command line: ``python -m layers.build --help``.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def ensure_import_paths() -> None:
    """Put ``lambdas/`` and ``scripts/`` on sys.path, as the scripts' ``_bootstrap`` does.

    The routing core ships as the Lambda asset's top-level package ``llm_router``; the CDK app and
    the layer build import it (and ``build_index``) the same way instead of through a second copy.
    """
    for path in (REPO_ROOT / "lambdas", REPO_ROOT / "scripts"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
