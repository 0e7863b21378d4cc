"""Each question through the router's own decision, as the Lambda makes it.

``decide`` runs ``RouterService.decide`` (the same classifier, thresholds and out-of-scope
action, without the answer call) on each row's routing text. ``precompute_embeddings`` lets the
offline stand-in embed every question up front on every core, into its cache, before the
questions are decided one at a time through the wire protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llm_router.config import RoutesConfig
from llm_router.decision.normalize import routing_text
from llm_router.decision.routing_policy import parse_routing
from llm_router.pipeline.service import RouterService

from evaluation.metrics import Outcome


def decide(service: RouterService, rows: Sequence[dict[str, str]]) -> list[Outcome]:
    """Each row through ``service.decide`` on its routing text (``normalize.routing_text``).

    The core will normalise in ``RouterService.decide`` itself; ``routing_text`` is idempotent,
    so normalising here as well changes nothing once it does.
    """
    max_chars = parse_routing(service.config).max_input_chars
    outcomes = []
    for row in rows:
        decision = service.decide(routing_text(row["question"], max_chars))
        decided_by = decision.details.get("decided_by")
        outcomes.append(
            Outcome(
                question=row["question"],
                label=row["label"],
                decision=decision.category,
                seconds=decision.seconds,
                escalated=(decided_by == "llm") if service.strategy == "hybrid" else None,
                source=row.get("source", ""),
                details=decision.details,
            )
        )
    return outcomes


def precompute_embeddings(backend: Any, config: RoutesConfig, rows: Sequence[dict]) -> None:
    """The stand-in computes every question's embedding up front, on every core, into its cache
    (on disk too, so a second evaluation computes none); the routers then ask for them one at a
    time through the wire protocol as the Lambda does. With Bedrock there is nothing to do."""
    if backend.standin is None:
        return
    max_chars = parse_routing(config).max_input_chars
    backend.standin.precompute_embeddings(
        [routing_text(row["question"], max_chars) for row in rows], config.embedding.normalize
    )
