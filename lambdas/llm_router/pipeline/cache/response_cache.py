"""The lookups and writes the core makes around an answer: exact, semantic, stale.

:class:`RouterService` asks :meth:`ResponseCache.prepare` for a request's cache key once the
category is decided, :meth:`~ResponseCache.lookup` before calling an answer model (a hit skips the
call), :meth:`~ResponseCache.keeping` for the writes that keep a fresh answer, and
:meth:`~ResponseCache.stale` when every answer target failed. What a lookup found becomes
``routing.cache`` in the response:

* ``hit``: the same normalised question, category, answer configuration, scope and context;
* ``semantic_hit``: a cached question of the same partition (scope, category, configuration and
  the guard's facts; no conversation) whose embedding is at least
  ``cache.semantic_min_similarity`` similar; ``routing.cache_similarity`` says how similar;
* ``miss``: answered by a model, and kept for the next caller;
* ``bypass``: not read: the category's cache is off or the client sent ``Cache-Control:
  no-cache`` (still kept: the fresh answer replaces the old) or ``no-store`` (not kept either);
* ``stale``: every answer target failed and an answer past its TTL, within
  ``cache.stale_max_seconds``, was served instead of a 503.

The semantic cache reuses the vector the semantic classifier computed for the question
(``Classification.embedding``), so it costs no embedding call; the LLM-assisted router has none
and uses the exact cache only.

Nothing here logs a question or an answer: a failing table is logged by its error type alone.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import wait
from typing import Any

from ...config import RoutesConfig
from ...config.cache import CACHE_TABLE_ENV, CacheSettings, CategoryCache
from ...config.targets import TargetPlan
from ...models.warm_up import SharedClient
from ...records import record
from ..side_calls import Write, beside
from .guard import Facts, facts, same_facts
from .keys import cache_text, config_version, context_of, digest, scope_of
from .store import CacheStore, Candidate, Entry

HIT, SEMANTIC_HIT, MISS, BYPASS, STALE = "hit", "semantic_hit", "miss", "bypass", "stale"
STATUSES = (HIT, SEMANTIC_HIT, MISS, BYPASS, STALE)
_SIMILARITY_DIGITS = 4
_WRITE_WAIT_SECONDS = 2.0  # how long a write (or a stale read) waits for a client still warming
logger = logging.getLogger(__name__)


@record(frozen=True)
class CacheRequest:
    """A request's cache identity, made once the category is known."""

    category: str
    key: str  # the exact entry's key
    settings: CategoryCache | None  # None: the cache is off for this category
    partition: str | None = None  # the semantic partition; None: no semantic lookup
    vector: Any = None
    facts: Facts | None = None
    read: bool = True  # False: Cache-Control no-cache / no-store, or the category is off
    write: bool = True


@record(frozen=True)
class CacheResult:
    status: str
    entry: Entry | None = None
    similarity: float | None = None

    def routing(self) -> dict[str, Any]:
        """The response's ``routing`` fields for this result."""
        fields: dict[str, Any] = {"cache": self.status}
        if self.similarity is not None:
            fields["cache_similarity"] = round(self.similarity, _SIMILARITY_DIGITS)
        if self.entry is not None:
            fields["cache_saved_usd"] = self.entry.cost_usd
        return fields


def cache_control(header: str | None) -> tuple[bool, bool]:
    """(read, write) as a ``Cache-Control`` request header allows."""
    directives = {d.strip().split("=")[0].lower() for d in (header or "").split(",")}
    if "no-store" in directives:
        return False, False
    return "no-cache" not in directives, True


def cosine(a: Any, b: Any) -> float:
    import numpy as np

    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm else 0.0


class ResponseCache:
    def __init__(self, config: RoutesConfig, store: CacheStore) -> None:
        self.config = config
        self.settings: CacheSettings = config.cache
        self.store = store

    @classmethod
    def from_env(
        cls, config: RoutesConfig, shared: SharedClient | None = None
    ) -> ResponseCache | None:
        """The cache on ``CACHE_TABLE_NAME``; None without a table or with the cache off.
        ``shared``: a DynamoDB client to use (the budget guard's); else the store warms up its
        own."""
        table = os.environ.get(CACHE_TABLE_ENV)
        if not table or not config.cache.enabled:
            return None
        store = CacheStore(table, shared=shared)
        if shared is None:
            store.warm_up()
        return cls(config, store)

    def prepare(
        self,
        question: str,
        category: str,
        plan: TargetPlan,
        tier: str,
        history: Sequence[Any] = (),
        vector: Any = None,
        cache_control_header: str | None = None,
        api_key_id: str | None = None,
    ) -> CacheRequest:
        settings = self.settings.for_category(category)
        scope = scope_of(self.settings.scope, tier, api_key_id)
        version = config_version(self.config, plan)
        key = digest(scope, category, version, context_of(history), cache_text(question))
        read, write = cache_control(cache_control_header)
        if settings is None:
            return CacheRequest(category, key, None, read=False, write=False)
        semantic = settings.semantic and not history and vector is not None
        found = facts(question) if semantic else None
        return CacheRequest(
            category=category,
            key=key,
            settings=settings,
            # Candidates are grouped by their facts too: a lookup reads only the questions it
            # could be served from, so a partition holds the phrasings of one question, not a
            # category's whole traffic.
            partition=(
                digest(scope, category, version, found.as_dict())[:32] if found else None
            ),
            vector=vector if semantic else None,
            facts=found,
            read=read,
            write=write,
        )

    def lookup(self, request: CacheRequest) -> CacheResult:
        """A fresh exact entry, else a fresh semantic match, else a miss (or bypass). The
        semantic candidates are read while the exact entry is (one round trip, not two)."""
        if not request.read:
            return CacheResult(BYPASS)
        if not self.store.ready(wait=0):  # a cold start's first request: not worth waiting
            return CacheResult(MISS)
        partition = request.partition
        candidates = (
            beside(lambda: self.store.candidates(partition, self.settings.max_candidates))
            if partition is not None else None
        )
        try:
            now = self.store.now()
            entry = self.store.get(request.key)
            if entry is not None and now < entry.fresh_until:
                return CacheResult(HIT, entry)
            if candidates is not None:
                return self._semantic(request, now, candidates.result())
        except Exception as exc:  # noqa: BLE001 - the table failing is a miss, never an error
            logger.warning("cache lookup failed; answering without it: %s", type(exc).__name__)
        finally:
            if candidates is not None:
                wait([candidates])  # nothing outlives the lookup (its failure was logged above)
        return CacheResult(MISS)

    def _semantic(
        self, request: CacheRequest, now: int, candidates: Sequence[Candidate]
    ) -> CacheResult:
        threshold = self.settings.semantic_min_similarity
        best: tuple[float, str] | None = None
        assert request.facts is not None
        for candidate in candidates:
            similarity = cosine(request.vector, candidate.vector)
            if similarity < threshold or not same_facts(request.facts, candidate.facts):
                continue
            if best is None or similarity > best[0]:
                best = (similarity, candidate.key)
        if best is None:
            return CacheResult(MISS)
        entry = self.store.get(best[1])
        if entry is None or now >= entry.fresh_until:
            return CacheResult(MISS)
        return CacheResult(SEMANTIC_HIT, entry, best[0])

    def keeping(
        self, request: CacheRequest, answer: str, model_id: str, target: str,
        cost_usd: float | None,
    ) -> list[Write]:
        """The writes that store a fresh answer: its entry and, in a semantic partition, its
        candidate. Neither reads the other, so they run with the request's other end writes
        (llm_router.pipeline.side_calls), not one after the other; a candidate whose entry
        failed to write is a miss at lookup. Each failure is logged and dropped. None when the
        answer is not to be kept."""
        if not request.write or request.settings is None or not answer.strip():
            return []
        now = self.store.now()
        fresh_until = now + request.settings.ttl_seconds
        entry = Entry(
            answer=answer,
            model_id=model_id,
            target=target,
            category=request.category,
            created_at=now,
            fresh_until=fresh_until,
            expires_at=fresh_until + self.settings.stale_max_seconds,
            cost_usd=cost_usd,
        )
        writes: list[Write] = [
            ("cache", lambda: self._write(lambda: self.store.put(request.key, entry)))
        ]
        partition, found = request.partition, request.facts
        if partition is not None and found is not None:
            writes.append((
                "cache candidate",
                lambda: self._write(lambda: self.store.put_candidate(
                    partition, request.key, request.vector, found, entry
                )),
            ))
        return writes

    def _write(self, put: Callable[[], None]) -> None:
        self.store.ready(wait=_WRITE_WAIT_SECONDS)  # a client still not there fails below: logged
        try:
            put()
        except Exception as exc:  # noqa: BLE001 - an answer not cached beats a failed request
            logger.warning("cache write failed; answer not cached: %s", type(exc).__name__)

    def stale(self, request: CacheRequest) -> CacheResult | None:
        """The exact entry, even past its TTL, while within ``cache.stale_max_seconds``."""
        if not request.read or request.settings is None:
            return None
        try:
            self.store.ready(wait=_WRITE_WAIT_SECONDS)
            entry = self.store.get(request.key)
        except Exception as exc:  # noqa: BLE001 - no stale answer: the outage error stands
            logger.warning("cache stale lookup failed: %s", type(exc).__name__)
            return None
        if entry is None or self.store.now() >= entry.expires_at:
            return None
        return CacheResult(STALE, entry)
