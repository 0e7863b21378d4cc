"""The example requests the README shows, kept here so the docs and the tests use the same
strings: ``tests/test_local_run.py`` runs these exact curl lines against ``scripts/local.py``, so a
README that mirrors them cannot drift into commands that do not work.

The start-up banner's "Try:" lines come from the routes file instead (:func:`banner_examples`):
the first reference prompt of each category, so a user's own categories get their own examples.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm_router.config import RoutesConfig

README_BASE_URL = "http://127.0.0.1:3000"
README_API_KEY = "demo-key"
WW2_QUESTION = "What year did World War II end?"
QUADRATIC_QUESTION = "Solve the quadratic equation: 2x^2 - 5x + 3 = 0"


def curl_line(base_url: str, api_key: str, router: str, question: str) -> str:
    """A curl command, ready to paste into a POSIX shell, that asks one router a question."""
    body = json.dumps({"question": question}, ensure_ascii=False, separators=(",", ":"))
    return (
        f"curl -s -X POST {base_url}/{router}/ask -H {shlex.quote(f'x-api-key: {api_key}')} "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )


# The README's two curl calls, exactly as printed there (`scripts/local.py --api-key demo-key`).
README_CURLS = (
    "curl -s -X POST http://127.0.0.1:3000/semantic/ask -H 'x-api-key: demo-key' "
    "-H 'Content-Type: application/json' -d '{\"question\":\"What year did World War II end?\"}'",
    "curl -s -X POST http://127.0.0.1:3000/llm-assisted/ask -H 'x-api-key: demo-key' "
    "-H 'Content-Type: application/json' "
    "-d '{\"question\":\"Solve the quadratic equation: 2x^2 - 5x + 3 = 0\"}'",
)
README_EXAMPLES = (("semantic", WW2_QUESTION), ("llm-assisted", QUADRATIC_QUESTION))


def banner_examples(config: RoutesConfig, routers: Sequence[str]) -> list[tuple[str, str]]:
    """(router, question) per category with a reference prompt: its first one, the routers taken
    in turn so that each category's example shows a different router where there are several."""
    if not routers:
        return []
    prompts = [c.reference_prompts[0] for c in config.categories.values() if c.reference_prompts]
    return [(routers[i % len(routers)], prompt) for i, prompt in enumerate(prompts)]
