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
    clients: Mapping[str, Any] | None = None,
    budgets: Mapping[str, Any] | None = None,
    feedback_tokens: Any | None = None,
    tokens: Mapping[str, Any] | None = None,
    cache: Any | None = None,
    caches: Mapping[str, Any] | None = None,
    stream_clients: Mapping[str, Any] | None = None,
    stream_budgets: Mapping[str, Any] | None = None,
    conversations: Any | None = None,
    conversation_stores: Mapping[str, Any] | None = None,
) -> list[MountedRouter]:
    """Build every router's service now (the Lambda cold start) and wrap it in its handler;
    ``budget`` is the daily budget guard they share (``llm_router.governance.budget``), None for
    none; ``feedback_tokens`` what signs their answers' feedback tokens (None: no tokens);
    ``cache`` the response cache they share (``llm_router.pipeline.cache``), None for none;
    ``conversations`` the server-kept conversations' store
    (``llm_router.governance.conversation_store``), None for client-sent history only.
    ``clients``, ``budgets``, ``tokens``, ``caches`` and ``conversation_stores`` (strategy ->
    Bedrock client, guard, tokens, cache, store) give a router its own, signed with its
    function's role, in place of ``client``, ``budget``, ``feedback_tokens``, ``cache`` and
    ``conversations``. ``stream_clients`` and ``stream_budgets`` do the same for a separate
    ``/ask/stream`` handler (the streaming function's role, which has no cache, issues no
    feedback tokens and keeps no conversations, as deployed); without them ``/ask/stream`` is
    the router's own handler."""
    tier_keys = {local_key_id(t, config.default_tier): t for t in config.tiers}

    def handler_for(
        strategy: Strategy, bedrock: Any, guard: Any, its_cache: Any, its_tokens: Any,
        its_conversations: Any,
    ) -> tuple[StreamingRouterHandler, str | None]:
        try:
            service = build_service(
                strategy.name, config, bedrock, index_dir, embedding_source, budget=guard,
                cache=its_cache, conversations=its_conversations,
            )
        except _INIT_ERRORS as exc:
            factory, error = _failing(exc), f"{type(exc).__name__}: {exc}"
        else:
            factory, error = _ready(service), None
        handler = StreamingRouterHandler(
            strategy=strategy.name, service_factory=factory, eager=True, tier_keys=tier_keys,
            feedback_tokens=its_tokens,
        )
        return handler, error

    mounted = []
    for strategy in strategies if strategies is not None else STRATEGIES.values():
        name = strategy.name
        handler, error = handler_for(
            strategy, (clients or {}).get(name, client), (budgets or {}).get(name, budget),
            (caches or {}).get(name, cache), (tokens or {}).get(name, feedback_tokens),
            (conversation_stores or {}).get(name, conversations),
        )
        stream_handler = None
        if stream_clients and name in stream_clients:
            stream_handler, _ = handler_for(
                strategy, stream_clients[name], (stream_budgets or {}).get(name, budget),
                None, None, None,
            )
        mounted.append(MountedRouter(strategy, handler, error, stream_handler))
    return mounted
