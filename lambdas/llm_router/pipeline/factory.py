"""Assemble a RouterService for a strategy: the one place that wires config, client and index."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from ..config import RoutesConfig
from ..config.cache import CACHE_TABLE_ENV
from ..config.settings import BUDGET_TABLE_ENV, CONVERSATION_TABLE_ENV
from ..decision.classification import Classifier
from ..decision.classifiers.llm import LlmClassifier
from ..models.answering import ConverseAnswerer
from ..models.bedrock import endpoint_kind, runtime_recipe
from ..models.breaker import BreakerBoard
from ..models.resilient_client import ClientPool, ResilientClient
from .service import BudgetGuard, ConversationKeeper, RouterService
from .strategies import get_strategy

SEMANTIC_INDEX_DIR_ENV = "SEMANTIC_INDEX_DIR"
DEFAULT_SEMANTIC_INDEX_DIR = Path("/opt/semantic-index")  # where the layer puts it in Lambda
BUDGET_FROM_ENV = "from-env"  # budget and conversations: as the environment says
CACHE_FROM_ENV = "from-env"


def index_dir_from_env() -> Path:
    return Path(os.environ.get(SEMANTIC_INDEX_DIR_ENV) or DEFAULT_SEMANTIC_INDEX_DIR)


def build_classifier(
    strategy_name: str,
    config: RoutesConfig,
    client: Any,
    index_dir: Path | None = None,
    embedding_source: str | None = None,
    embedding_client: Any | None = None,
) -> Classifier:
    """The strategy's classifier; ``client`` serves the classifier LLM, ``embedding_client``
    (default: the same) the embedding model."""
    strategy = get_strategy(strategy_name)
    semantic: Classifier | None = None
    if strategy.uses_embeddings:
        # Imported here: they need numpy and faiss, which only the semantic layer ships, so the
        # LLM-assisted function (runtime layer only) must not import them at cold start.
        from ..decision.classifiers.semantic import SemanticClassifier
        from ..decision.embeddings import TitanEmbedder
        from ..decision.semantic_index import load_index

        index = load_index(
            index_dir or index_dir_from_env(), config, embedding_source or endpoint_kind()
        )
        embedder = TitanEmbedder(embedding_client or client, config.embedding)
        semantic = SemanticClassifier(embedder, index, config)
    llm = LlmClassifier(client, config) if strategy.uses_classifier_llm else None
    if semantic and llm:
        from ..decision.classifiers.hybrid import HybridClassifier

        return HybridClassifier(semantic, llm)
    if semantic:
        return semantic
    if llm:
        return llm
    raise ValueError(f"no classifier wired for strategy {strategy.name!r}")


def build_service(
    strategy_name: str,
    config: RoutesConfig,
    client: Any | None = None,
    index_dir: Path | None = None,
    embedding_source: str | None = None,
    budget: BudgetGuard | None | str = BUDGET_FROM_ENV,
    warm_client: bool = False,
    cache: Any = CACHE_FROM_ENV,
    conversations: ConversationKeeper | None | str = BUDGET_FROM_ENV,
) -> RouterService:
    """A RouterService whose every Bedrock call goes through the resilient clients: one budget
    per request, retries, and a circuit breaker per target shared by all stages.

    ``budget``: the daily budget guard; by default the one ``BUDGET_TABLE_NAME`` names (none
    when unset), None for no guard. ``warm_client``: make the Bedrock client of the first call
    now rather than in the first request (the Lambda init phase does: its objects are made while
    the garbage collector is paused and then frozen, see ``init_phase``); by default no client
    exists until a call needs one. ``cache``: the response cache (``llm_router.pipeline.cache``);
    by default the one ``CACHE_TABLE_NAME`` names (none when unset), None for no cache.
    ``conversations``: the server-kept conversations; by default the store
    ``CONVERSATION_TABLE_NAME`` names (none when unset), None for none."""
    if budget == BUDGET_FROM_ENV:
        budget = None
        if os.environ.get(BUDGET_TABLE_ENV):  # no table, no guard: skip importing its module
            from ..governance.budget import BudgetGuard as DynamoBudgetGuard

            budget = DynamoBudgetGuard.from_env(config)
    pool = ClientPool(client) if client is not None else ClientPool.from_recipe(runtime_recipe())
    resilience = config.resilience
    breakers = BreakerBoard(resilience.breaker)

    def stage_client(stage: str, cap: float) -> ResilientClient:
        return ResilientClient(pool, breakers, resilience, stage, cap)

    cap = resilience.classification_timeout_seconds
    if warm_client:
        # Every router's first call is a classification-stage call. Should making its client
        # fail, the first call makes it again and reports the error, as without warming.
        with contextlib.suppress(Exception):
            pool.get(cap)
    classifier = build_classifier(
        strategy_name,
        config,
        stage_client("classification", cap),
        index_dir,
        embedding_source,
        embedding_client=stage_client("embedding", cap),
    )
    answerer = ConverseAnswerer(
        stage_client("answer", resilience.answer_attempt_timeout_seconds), config.answering
    )
    guard = budget if not isinstance(budget, str) else None
    # The guard's DynamoDB client for the cache and the conversations too: one client and
    # connection pool for the function's tables (a guard without one, e.g. a test's: none).
    share = getattr(guard, "shared_client", None)
    shared = share() if callable(share) else None
    if cache == CACHE_FROM_ENV:
        cache = None
        if os.environ.get(CACHE_TABLE_ENV):
            from .cache.response_cache import ResponseCache

            cache = ResponseCache.from_env(config, shared)
    if conversations == BUDGET_FROM_ENV:
        conversations = None
        if os.environ.get(CONVERSATION_TABLE_ENV):
            from ..governance.conversation_store import ConversationStore

            conversations = ConversationStore.from_env(config, shared)
    store = conversations if not isinstance(conversations, str) else None
    return RouterService(
        config, classifier, answerer, breakers=breakers, budget=guard, cache=cache,
        conversations=store,
    )
