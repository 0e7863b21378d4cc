"""The real Lambda handler of every router, built in-process with an explicit Bedrock client.

One :class:`llm_router.edge.handler.RouterHandler` per entry of ``STRATEGIES`` (never a hard-coded
list), each given a ready service instead of reading ``ROUTER_STRATEGY`` and friends from the
environment, so several routers share one process. A router that cannot be built is still mounted:
its handler answers 503 with the reason, as the deployed function does, and the caller can print
why at start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _bootstrap  # noqa: F401  (puts lambdas/ and scripts/ on sys.path)
from llm_router.config import RoutesConfig
from llm_router.edge.handler import _INIT_ERRORS, RouterHandler
from llm_router.pipeline.factory import build_service
from llm_router.pipeline.service import RouterService
from llm_router.pipeline.strategies import STRATEGIES, Strategy

from .gateway import local_key_id


@dataclass(frozen=True)
class MountedRouter:
    strategy: Strategy
    handler: RouterHandler
    error: str | None  # why the router refuses to serve, None when it is ready


def _ready(service: RouterService) -> Callable[[], RouterService]:
    return lambda: service


def _failing(exc: Exception) -> Callable[[], RouterService]:
    def factory() -> RouterService:
        raise exc

    return factory


def mount_routers(
    config: RoutesConfig,
    client: Any,
    index_dir: Path,
    embedding_source: str,
    strategies: Iterable[Strategy] | None = None,
    budget: Any | None = None,
    clients: Mapping[str, Any] | None = None,
    budgets: Mapping[str, Any] | None = None,
    feedback_tokens: Any | None = None,
    tokens: Mapping[str, Any] | None = None,
    cache: Any | None = None,
    caches: Mapping[str, Any] | None = None,
) -> list[MountedRouter]:
    """Build every router's service now (the Lambda cold start) and wrap it in its handler;
    ``budget`` is the daily budget guard they share (``llm_router.governance.budget``), None for
    none; ``feedback_tokens`` what signs their answers' feedback tokens (None: no tokens);
    ``cache`` the response cache they share (``llm_router.pipeline.cache``), None for none.
    ``clients``, ``budgets``, ``tokens`` and ``caches`` (strategy -> Bedrock client, guard,
    tokens, cache) give a router its own, signed with its function's role, in place of
    ``client``, ``budget``, ``feedback_tokens`` and ``cache``."""
    mounted = []
    for strategy in strategies if strategies is not None else STRATEGIES.values():
        try:
            service = build_service(
                strategy.name, config, (clients or {}).get(strategy.name, client), index_dir,
                embedding_source, budget=(budgets or {}).get(strategy.name, budget),
                cache=(caches or {}).get(strategy.name, cache),
            )
        except _INIT_ERRORS as exc:
            factory, error = _failing(exc), f"{type(exc).__name__}: {exc}"
        else:
            factory, error = _ready(service), None
        handler = RouterHandler(
            strategy=strategy.name, service_factory=factory, eager=True,
            tier_keys={local_key_id(t, config.default_tier): t for t in config.tiers},
            feedback_tokens=(tokens or {}).get(strategy.name, feedback_tokens),
        )
        mounted.append(MountedRouter(strategy, handler, error))
    return mounted
