"""The cache's DynamoDB table: exact entries by key, semantic candidates by partition.

**Why DynamoDB, for both caches.** The cache must be shared by every Lambda instance (one
instance's memory would miss most repeats and forget them at every cold start) and reachable
offline (moto). Its cost at the blog's traffic (100,000 questions a day), from on-demand list
prices (``python scripts/cost_calculator.py --cache-hit-rate 0``, which prices these items):

* an exact lookup is one eventually consistent GetItem of an entry under 4 KB: 0.5 read unit;
* a semantic lookup is one Query of the newest ``cache.max_candidates`` candidates of the
  question's partition (scope, category, configuration version and the guard's facts: only the
  questions it could be served from, the phrasings of one question), each ~2.5 KB (a float16
  vector of 1,024 dimensions, the guard's facts, the entry's key): 50 candidates would read 16
  units, the calculator's upper bound; a partition usually holds a few. The vectors are
  re-ranked in the function (numpy, a dot product each);
* a miss writes its entry (2 units) and, in a semantic category, its candidate (3 units);
* with no hit at all the shipped routes.json's table costs $10.56 a month: $8.45 for its semantic
  category (Queries $3.00, writes $4.69, 2.7 GB kept for TTL plus stale time $0.67) and $2.11
  for its exact-only one.

Latency: a GetItem and a Query answer in milliseconds (DynamoDB's documented single-digit
milliseconds; not measured here against AWS), far below an answer's seconds. The alternatives,
from their AWS pricing pages: S3 Vectors answers in sub-second time and bills per query and per
vector stored, worth it for millions of vectors searched at once, not for the handful of
phrasings a partition holds here; OpenSearch Serverless bills its OCUs around the clock,
hundreds of dollars a month at its minimum, more than the whole router at this traffic;
ElastiCache or MemoryDB would put the function in a VPC. DynamoDB is already the router's store
(budget, feedback), so the cache adds a table, not a service.

**Items.** ``pk`` and ``sk`` strings. An exact entry is ``pk = "a#<key>"``, ``sk = "a"``; a
semantic candidate is ``pk = "s#<partition>"``, ``sk = "<created>#<key>"`` (newest last, read
backwards). Neither holds the question: the entry holds the answer, the answering model, its
cost (for the money-saved metric) and the category (for a purge by category); the candidate its
vector, the guard's facts and the entry's key. ``fresh_until`` ends the TTL of the category;
``expires_at`` (the table's TTL attribute) adds ``cache.stale_max_seconds``, the longest an
answer may be served stale in an outage. DynamoDB deletes expired items lazily (within days),
so reads check both times themselves.

Failures of the table never fail a request: a lookup that fails is a miss and a write that fails
is dropped, both logged without the question or answer. The function's role may call GetItem,
PutItem and Query on this table only (``stacks/router_api.py``: ``CACHE_ACTIONS``); purging
(Scan, BatchWriteItem) is ``scripts/cache.py``'s, with the operator's credentials.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ...models.warm_up import SharedClient, WarmUp
from ...observability.tracing import traced_call
from ...records import record
from .guard import Facts

ENTRY_PREFIX = "a#"
CANDIDATE_PREFIX = "s#"
ENTRY_SORT_KEY = "a"
TTL_ATTRIBUTE = "expires_at"
ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query")  # what the function calls
logger = logging.getLogger(__name__)
Clock = Callable[[], float]


@record(frozen=True)
class Entry:
    """A cached answer."""

    answer: str
    model_id: str  # the model that answered
    target: str  # the answer target it was asked through
    category: str
    created_at: int
    fresh_until: int
    expires_at: int
    cost_usd: float | None  # what the answer cost when it was made: saved by each hit


@record(frozen=True)
class Candidate:
    key: str
    vector: Any  # numpy float32: numpy is imported only where vectors exist (semantic routers)
    facts: Facts
    fresh_until: int


def _number(value: float | int) -> dict[str, str]:
    return {"N": format(Decimal(repr(value)), "f")}


class CacheStore:
    """Reads and writes the cache table through a low-level DynamoDB client."""

    def __init__(
        self,
        table_name: str,
        client: Any | None = None,
        clock: Clock = time.time,
        shared: SharedClient | None = None,
    ):
        self.table_name = table_name
        self._client = client
        self.clock = clock
        self._warming = WarmUp()
        self._shared = shared

    def warm_up(self) -> None:
        """Create the DynamoDB client in a background thread, as the budget guard does: botocore
        loading DynamoDB's service model costs ~100 ms, which the cold start overlaps instead of
        the first request paying it."""

        def failed(exc: Exception) -> None:  # the first call retries and logs it
            logger.warning("cache: creating the DynamoDB client failed: %s", type(exc).__name__)

        self._warming.start(lambda: self.client, "cache-warm-up", failed)

    def ready(self, wait: float) -> bool:
        """Whether the client may be used now, waiting up to ``wait`` s for the warm-up (the
        shared client's, when the store uses another's)."""
        if self._shared is not None:
            return self._shared.ready(wait)
        return self._warming.ready(wait)

    @property
    def client(self) -> Any:
        if self._client is None:
            from ...governance.budget import table_client

            self._client = table_client(self._shared)
        return self._client

    def now(self) -> int:
        return int(self.clock())

    # -- exact entries -----------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        response = traced_call(
            self.client,
            "get_item",
            {"TableName": self.table_name, "Key": _entry_key(key)},
        )
        item = response.get("Item")
        if not item:
            return None
        return Entry(
            answer=item["answer"]["S"],
            model_id=item["model_id"]["S"],
            target=item["target"]["S"],
            category=item["category"]["S"],
            created_at=int(item["created_at"]["N"]),
            fresh_until=int(item["fresh_until"]["N"]),
            expires_at=int(item[TTL_ATTRIBUTE]["N"]),
            cost_usd=float(item["cost_usd"]["N"]) if "cost_usd" in item else None,
        )

    def put(self, key: str, entry: Entry) -> None:
        item = {
            **_entry_key(key),
            "answer": {"S": entry.answer},
            "model_id": {"S": entry.model_id},
            "target": {"S": entry.target},
            "category": {"S": entry.category},
            "created_at": _number(entry.created_at),
            "fresh_until": _number(entry.fresh_until),
            TTL_ATTRIBUTE: _number(entry.expires_at),
        }
        if entry.cost_usd is not None:
            item["cost_usd"] = _number(entry.cost_usd)
        traced_call(self.client, "put_item", {"TableName": self.table_name, "Item": item})

    # -- semantic candidates -----------------------------------------------------------------

    def put_candidate(
        self, partition: str, key: str, vector: Any, facts: Facts, entry: Entry
    ) -> None:
        import numpy as np

        item = {
            "pk": {"S": CANDIDATE_PREFIX + partition},
            "sk": {"S": f"{entry.created_at:012d}#{key}"},
            "ref": {"S": key},
            "vec": {"B": np.asarray(vector, dtype=np.float16).tobytes()},
            "facts": {"S": json.dumps(facts.as_dict(), separators=(",", ":"))},
            "category": {"S": entry.category},
            "fresh_until": _number(entry.fresh_until),
            TTL_ATTRIBUTE: _number(entry.expires_at),
        }
        traced_call(self.client, "put_item", {"TableName": self.table_name, "Item": item})

    def candidates(self, partition: str, limit: int) -> list[Candidate]:
        """The partition's newest ``limit`` candidates that are still fresh."""
        import numpy as np

        response = traced_call(
            self.client,
            "query",
            {
                "TableName": self.table_name,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": CANDIDATE_PREFIX + partition}},
                "ProjectionExpression": "#ref, vec, facts, fresh_until",
                "ExpressionAttributeNames": {"#ref": "ref"},
                "ScanIndexForward": False,
                "Limit": limit,
            },
        )
        now = self.now()
        found = []
        for item in response.get("Items", []):
            fresh_until = int(item["fresh_until"]["N"])
            if fresh_until <= now:
                continue
            found.append(
                Candidate(
                    key=item["ref"]["S"],
                    vector=np.frombuffer(item["vec"]["B"], dtype=np.float16).astype(np.float32),
                    facts=Facts.from_dict(json.loads(item["facts"]["S"])),
                    fresh_until=fresh_until,
                )
            )
        return found


def _entry_key(key: str) -> dict[str, Any]:
    return {"pk": {"S": ENTRY_PREFIX + key}, "sk": {"S": ENTRY_SORT_KEY}}
