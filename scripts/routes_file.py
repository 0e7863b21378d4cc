"""How every script takes the routes file: ``--routes FILE``, else ``ROUTES_FILE``, else the
repository's ``routes.json``.

One option with one meaning in every script, and one way it reaches the code: the option is
written into ``ROUTES_FILE`` for the rest of the process (and any child process, such as the
Bedrock stand-in), the variable ``llm_router.config.load_routes`` already reads. So a script, the
routing core it drives and the cost tables it prints cannot read two different files. The CDK app
takes the same file as ``-c routesFile=FILE`` (``stacks/app_builder.py``), which does the same.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llm_router.config import ROUTES_FILE_ENV, ConfigError

ROUTES_HELP = f"routes file (default: ${ROUTES_FILE_ENV}, else the repository's routes.json)"


def add_routes_argument(parser: argparse.ArgumentParser) -> None:
    """``--routes FILE`` on a script's parser, with the shared help text."""
    parser.add_argument("--routes", type=Path, default=None, metavar="FILE", help=ROUTES_HELP)


def use_routes_file(path: str | Path | None) -> Path | None:
    """Make ``path`` (when given) the process's routes file; ConfigError when it is no file.

    Returns the absolute path, or None when the default lookup stays in force.
    """
    if path is None:
        return None
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise ConfigError(f"routes file {path} does not exist")
    os.environ[ROUTES_FILE_ENV] = str(resolved)
    return resolved


def write_routes_json(path: Path, raw: Mapping[str, Any]) -> None:
    """A routes document in the repository's layout (2-space indent, UTF-8 kept, final newline),
    so that a rewritten file diffs only where it changed."""
    path.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
