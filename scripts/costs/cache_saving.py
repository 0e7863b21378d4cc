"""What the response cache saves at a hit rate, against what its DynamoDB table costs.

Which categories are cached, for how long and which ones semantically comes from ``routes.json``
(``cache``, the function's own settings); the traffic, tokens and answer prices from the scenario;
DynamoDB's unit prices and the item sizes from the scenario's ``cache`` section. For each cached
category, at hit rate ``h`` of its questions:

* **saved**: ``h`` of its answer cost (a hit calls no answer model). ``cache.hit_rate`` is one
  share for every cached category or ``{category: share}``;
* **lookups**: one eventually consistent GetItem per question (an entry under 4 KB: 0.5 read
  request units); in a semantic category also one Query of ``cache.max_candidates`` candidates
  per question (counted for every question, as if no exact hit spared one: an upper bound) and a
  GetItem per hit;
* **writes**: per miss, the entry (1 write unit per KB) and, in a semantic category, its candidate;
* **storage**: the misses of ``ttl + stale_max`` days kept, at the GB-month price.

Not modelled: the shorter Lambda run of a hit (the saving is understated by it) and the
free tier of DynamoDB (the cost is overstated by it). Hand-written for the reasons of the
``costs`` package: a few multiplications over prices kept as data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from llm_router.config import RoutesConfig

from .calculation import compute_answers
from .errors import CostError
from .formatting import fmt_usd
from .scenario import to_decimal

MILLION = Decimal(1_000_000)
SECONDS_PER_DAY = 86_400
KB_PER_GB = Decimal(1024 * 1024)


def units(kb: Decimal, unit_kb: int) -> Decimal:
    """DynamoDB request units for an item of ``kb`` (units of ``unit_kb``: 1 write, 4 read)."""
    return Decimal(max(1, math.ceil(kb / unit_kb)))


def compute_cache(scenario: Mapping[str, Any], config: RoutesConfig) -> dict[str, Any] | None:
    """The cache's monthly saving and cost per category; None when no hit rate is set."""
    section = scenario.get("cache") or {}
    if section.get("hit_rate") is None:
        return None
    rates = hit_rates(section["hit_rate"])
    prices = section["dynamodb"]
    read = to_decimal(prices["read_per_million"], "cache.dynamodb.read_per_million")
    write = to_decimal(prices["write_per_million"], "cache.dynamodb.write_per_million")
    storage = to_decimal(prices["storage_per_gb_month"], "cache.dynamodb.storage_per_gb_month")
    entry_kb = to_decimal(section["entry_kb"], "cache.entry_kb")
    # A candidate: the float16 vector plus its facts and keys.
    candidate_kb = Decimal(config.embedding.dimensions * 2) / 1024 + to_decimal(
        section["candidate_overhead_kb"], "cache.candidate_overhead_kb"
    )
    days = to_decimal(scenario["days_per_month"], "days_per_month")
    settings = config.cache
    lines = []
    for answer in compute_answers(scenario):
        cached = settings.for_category(answer.category)
        rate = rates.get(answer.category, rates.get("*"))
        if cached is None or rate is None:
            continue
        questions, hits = answer.questions, answer.questions * rate
        misses = questions - hits
        read_units = questions * Decimal("0.5")
        write_units = misses * units(entry_kb, 1)
        kept_kb = entry_kb
        if cached.semantic:
            query_kb = candidate_kb * settings.max_candidates
            read_units += questions * units(query_kb, 4) / 2 + hits * Decimal("0.5")
            write_units += misses * units(candidate_kb, 1)
            kept_kb += candidate_kb
        kept_days = Decimal(cached.ttl_seconds + settings.stale_max_seconds) / SECONDS_PER_DAY
        kept_gb = misses / days * kept_days * kept_kb / KB_PER_GB
        cost = read_units * read / MILLION + write_units * write / MILLION + kept_gb * storage
        saved = answer.monthly_cost * rate
        lines.append({
            "category": answer.category,
            "hit_rate": rate,
            "semantic": cached.semantic,
            "questions": questions,
            "hits": hits,
            "answers_saved": saved,
            "cache_cost": cost,
            "net_saving": saved - cost,
        })
    hits = sum((line["hits"] for line in lines), Decimal(0))
    questions = sum((line["questions"] for line in lines), Decimal(0))
    return {
        "hit_rate": hits / questions if questions else Decimal(0),
        "categories": lines,
        "answers_saved": sum((line["answers_saved"] for line in lines), Decimal(0)),
        "cache_cost": sum((line["cache_cost"] for line in lines), Decimal(0)),
        "net_saving": sum((line["net_saving"] for line in lines), Decimal(0)),
    }


def hit_rates(value: Any) -> dict[str, Decimal]:
    """``cache.hit_rate``: one share for every cached category (``"*"``), or one per category."""
    raw = value if isinstance(value, Mapping) else {"*": value}
    rates = {}
    for name, rate in raw.items():
        share = to_decimal(rate, f"cache.hit_rate {name}")
        if not 0 <= share <= 1:
            raise CostError(f"cache.hit_rate must be between 0 and 1, got {share} for {name}")
        rates[str(name)] = share
    return rates


def _percent(rate: Decimal) -> str:
    return f"{float(rate) * 100:.4g}%"


def render_cache_text(result: Mapping[str, Any]) -> str:
    rate = _percent(result["hit_rate"])
    out = [f"Response cache at a {rate} hit rate (routes.json cache; DynamoDB on demand):"]
    for line in result["categories"]:
        kind = "exact + semantic" if line["semantic"] else "exact"
        out.append(
            f"  {line['category']:<10} {kind:<16} {_percent(line['hit_rate']):>6} hits  answers "
            f"saved {fmt_usd(line['answers_saved'])}  cache cost {fmt_usd(line['cache_cost'])}  "
            f"net {fmt_usd(line['net_saving'])}"
        )
    out.append(
        f"  total: answers saved {fmt_usd(result['answers_saved'])} a month, the cache costs "
        f"{fmt_usd(result['cache_cost'])}: {fmt_usd(result['net_saving'])} saved"
    )
    return "\n".join(out) + "\n"


def cache_to_dict(result: Mapping[str, Any]) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, Decimal):
            return float(round(value, 4))
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dict(result))
