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

from llm_router.config import RoutesConfig
from llm_router.edge.handler import _INIT_ERRORS
from llm_router.edge.streaming import StreamingRouterHandler
from llm_router.pipeline.factory import build_service
from llm_router.pipeline.service import RouterService
from llm_router.pipeline.strategies import STRATEGIES, Strategy

from .gateway import local_key_id


@dataclass(frozen=True)
class FunctionAccess:
    """What one deployed function calls, on clients signed with its role (the local run's IAM):
    None where the run shares one for every function (or has none)."""

    bedrock: Any = None
    budget: Any = None  # the daily budget guard (llm_router.governance.budget)
    cache: Any = None  # the response cache (llm_router.pipeline.cache)
    tokens: Any = None  # what signs the answers' feedback tokens
    conversations: Any = None  # the server-kept conversations' store


@dataclass(frozen=True)
class MountedRouter:
    strategy: Strategy
    handler: StreamingRouterHandler  # /ask (called)
    error: str | None  # why the router refuses to serve, None when it is ready
    # /ask/stream (its stream method): the router's handler itself, or, when each function runs
    # with its own role, the streaming function's, on its role's clients.
    stream_handler: StreamingRouterHandler | None = None

    @property
    def streaming(self) -> StreamingRouterHandler:
        return self.stream_handler or self.handler


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
    feedback_tokens: Any | None = None,
    cache: Any | None = None,
    conversations: Any | None = None,
    routers: Mapping[str, FunctionAccess] | None = None,
    streams: Mapping[str, FunctionAccess] | None = None,
) -> list[MountedRouter]:
    """Build every router's service now (the Lambda cold start) and wrap it in its handler.

    What every function shares, None for none: ``budget`` the daily budget guard
    (``llm_router.governance.budget``), ``feedback_tokens`` what signs the answers' feedback
    tokens, ``cache`` the response cache (``llm_router.pipeline.cache``), ``conversations`` the
    server-kept conversations' store (``llm_router.governance.conversation_store``).
    ``routers`` (strategy -> its router function's access) gives a router its own, signed with
    its function's role; ``streams`` does the same for a separate ``/ask/stream`` handler, which
    then has the router's data on the streaming function's role, as deployed (without it
    ``/ask/stream`` is the router's own handler). A field that is None is the shared one."""
    tier_keys = {local_key_id(t, config.default_tier): t for t in config.tiers}
    shared = FunctionAccess(client, budget, cache, feedback_tokens, conversations)

    def handler_for(
        strategy: Strategy, access: FunctionAccess
    ) -> tuple[StreamingRouterHandler, str | None]:
        def its(name: str) -> Any:
            value = getattr(access, name)
            return value if value is not None else getattr(shared, name)

        try:
            service = build_service(
                strategy.name, config, its("bedrock"), index_dir, embedding_source,
                budget=its("budget"), cache=its("cache"), conversations=its("conversations"),
            )
        except _INIT_ERRORS as exc:
            factory, error = _failing(exc), f"{type(exc).__name__}: {exc}"
        else:
            factory, error = _ready(service), None
        handler = StreamingRouterHandler(
            strategy=strategy.name, service_factory=factory, eager=True, tier_keys=tier_keys,
            feedback_tokens=its("tokens"),
        )
        return handler, error

    mounted = []
    for strategy in strategies if strategies is not None else STRATEGIES.values():
        name = strategy.name
        handler, error = handler_for(strategy, (routers or {}).get(name, FunctionAccess()))
        stream_handler = None
        if streams and name in streams:
            stream_handler, _ = handler_for(strategy, streams[name])
        mounted.append(MountedRouter(strategy, handler, error, stream_handler))
    return mounted
