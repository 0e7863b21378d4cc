"""The ``cache`` section of routes.json: which categories' answers are reused, for how long, how.

Read here, with the rest of the configuration, so that the function, the stacks (the table, its
key) and the scripts (purge, evaluation, cost calculator) validate one definition::

    "cache": {
      "enabled": true,
      "scope": "tier",                    // or "api_key": entries never cross callers' keys
      "semantic_min_similarity": 0.9,     // fitted: scripts/evaluate.py --cache-pairs --fit-cache
      "max_candidates": 50,               // newest semantic candidates re-ranked per lookup
      "stale_max_seconds": 604800,        // how far past its TTL an answer may serve an outage
      "customer_managed_key": false,      // true: a KMS key of the stack encrypts the table
      "categories": {"<name>": {"enabled": true, "ttl_seconds": 86400, "semantic": false}}
    }

A category that the section does not list is not cached: caching is opted into per category,
and ``"enabled": false`` turns one off without deleting its settings. ``semantic`` is off unless a
category says so (a paraphrase may only reuse an answer where the guard of
``llm_router.pipeline.cache.guard`` is known to be safe for that category's questions).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import field
from typing import Any

from ..records import record

# The environment variable naming the cache table (set by the stack); here so the factory can tell
# whether a cache is wanted without importing it.
CACHE_TABLE_ENV = "CACHE_TABLE_NAME"
SCOPES = ("tier", "api_key")
DEFAULT_TTL_SECONDS = 86_400
DEFAULT_MIN_SIMILARITY = 0.9
DEFAULT_MAX_CANDIDATES = 50
DEFAULT_STALE_MAX_SECONDS = 7 * 86_400
_SECTION_KEYS = {
    "enabled", "scope", "semantic_min_similarity", "max_candidates", "stale_max_seconds",
    "customer_managed_key", "categories",
}
_CATEGORY_KEYS = {"enabled", "ttl_seconds", "semantic"}


class CacheConfigError(ValueError):
    """The ``cache`` section is malformed; the message names the key."""


@record(frozen=True)
class CategoryCache:
    ttl_seconds: int
    semantic: bool


@record(frozen=True)
class CacheSettings:
    enabled: bool = False
    scope: str = "tier"
    semantic_min_similarity: float = DEFAULT_MIN_SIMILARITY
    max_candidates: int = DEFAULT_MAX_CANDIDATES
    stale_max_seconds: int = DEFAULT_STALE_MAX_SECONDS
    customer_managed_key: bool = False
    categories: Mapping[str, CategoryCache] = field(default_factory=dict)

    def for_category(self, category: str) -> CategoryCache | None:
        """The category's cache settings; None when the cache is off for it."""
        return self.categories.get(category) if self.enabled else None

    @property
    def any_semantic(self) -> bool:
        return self.enabled and any(c.semantic for c in self.categories.values())


def _whole(value: Any, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CacheConfigError(f"{where} must be a whole number >= {minimum}, got {value!r}")
    return value


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise CacheConfigError(f"{where} must be true or false, got {value!r}")
    return value


def _unknown(section: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(k for k in set(section) - allowed if not k.startswith("_"))
    if unknown:
        raise CacheConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")


def parse_cache(raw: Mapping[str, Any], categories: tuple[str, ...]) -> CacheSettings:
    """The validated ``cache`` section; absent: the cache is off."""
    section = raw.get("cache")
    if section is None:
        return CacheSettings()
    if not isinstance(section, Mapping):
        raise CacheConfigError("cache must be an object")
    _unknown(section, _SECTION_KEYS, "cache")
    scope = section.get("scope", "tier")
    if scope not in SCOPES:
        raise CacheConfigError(f"cache.scope must be one of {SCOPES}, got {scope!r}")
    similarity = section.get("semantic_min_similarity", DEFAULT_MIN_SIMILARITY)
    if isinstance(similarity, bool) or not isinstance(similarity, int | float) or not (
        math.isfinite(similarity) and 0 < similarity <= 1
    ):
        raise CacheConfigError(
            f"cache.semantic_min_similarity must be in (0, 1], got {similarity!r}"
        )
    by_category: dict[str, CategoryCache] = {}
    listed = section.get("categories", {})
    if not isinstance(listed, Mapping):
        raise CacheConfigError("cache.categories must be an object")
    for name, spec in listed.items():
        where = f"cache.categories.{name}"
        if name.startswith("_"):
            continue
        if name not in categories:
            raise CacheConfigError(f"{where}: {name!r} is not a category")
        if not isinstance(spec, Mapping):
            raise CacheConfigError(f"{where} must be an object")
        _unknown(spec, _CATEGORY_KEYS, where)
        if not _flag(spec.get("enabled", True), f"{where}.enabled"):
            continue
        by_category[name] = CategoryCache(
            ttl_seconds=_whole(
                spec.get("ttl_seconds", DEFAULT_TTL_SECONDS), f"{where}.ttl_seconds", 1
            ),
            semantic=_flag(spec.get("semantic", False), f"{where}.semantic"),
        )
    return CacheSettings(
        enabled=_flag(section.get("enabled", True), "cache.enabled"),
        scope=scope,
        semantic_min_similarity=float(similarity),
        max_candidates=_whole(
            section.get("max_candidates", DEFAULT_MAX_CANDIDATES), "cache.max_candidates", 1
        ),
        stale_max_seconds=_whole(
            section.get("stale_max_seconds", DEFAULT_STALE_MAX_SECONDS),
            "cache.stale_max_seconds",
            0,
        ),
        customer_managed_key=_flag(
            section.get("customer_managed_key", False), "cache.customer_managed_key"
        ),
        categories=by_category,
    )
