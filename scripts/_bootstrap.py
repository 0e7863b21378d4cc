"""Puts the routing core (``lambdas/``) and ``scripts/`` on sys.path for the scripts.

The core ships as the Lambda asset's top-level package, so scripts import it the way the Lambda
runtime does (``import llm_router``) instead of through a second, installed copy.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
for _path in (REPO_ROOT / "lambdas", REPO_ROOT / "scripts"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
