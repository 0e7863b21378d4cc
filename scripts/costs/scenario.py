"""Scenarios: every input of the bill, read from JSON, deep-merged and validated.

Prices and traffic are data, not code, so that each number sits beside its source and a partial
file (or the command-line flags, which become one) can change any input by laying it over the
default ``scripts/cost_scenarios/blog-2024.json``. Numbers are read as exact ``Decimal``. Bad input
raises ``CostError`` naming the first wrong key, so that the user fixes it from one line instead
of a traceback from deep in the arithmetic.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CostError
from .prices import price_key, routes_prices

if TYPE_CHECKING:
    from llm_router.config import RoutesConfig

__all__ = ["CostError"]  # re-exported: callers import it from here and from the package

DEFAULT_SCENARIO_PATH = Path(__file__).resolve().parent.parent / "cost_scenarios" / "blog-2024.json"

ARCHITECTURES = ("x86_64", "arm64")
FREE_TIER_SCOPES = ("account", "per-function")


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` laid over it: objects merge key by key, anything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_scenario_file(path: str | Path) -> dict[str, Any]:
    """One scenario file; non-integral numbers are read as exact ``Decimal``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CostError(f"cannot read scenario file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise CostError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CostError(f"{path} must hold a JSON object")
    return data


def for_routes(
    scenario: Mapping[str, Any],
    config: RoutesConfig,
    per_day: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``scenario`` priced for a routes configuration instead of the blog's two categories.

    The categories are the configuration's (each answered by its preset's primary target), as
    are the classifier and embedding models, the price table and the premium category (the
    dearest target's, ``RoutesConfig.dearest_category``). Traffic is ``per_day`` per category
    where given, else the scenario's daily total split evenly; each category's Lambda duration is
    the scenario's mean (the blog measured 1 s and 3 s for its two; a duration per category is a
    ``--duration`` or a scenario file away). The infrastructure prices stay the scenario's; the
    blog's own figures, which compare with its two categories, are left out.
    """
    old = entries(_object(scenario, "categories"))
    total = sum((to_decimal(c["questions_per_day"], "questions_per_day") for c in old.values()),
                Decimal(0))
    duration = sum(
        (to_decimal(c["lambda_duration_seconds"], "lambda_duration_seconds") for c in old.values()),
        Decimal(0),
    ) / max(len(old), 1)
    per_day = per_day or {}
    unknown = sorted(set(per_day) - set(config.categories))
    if unknown:
        raise CostError(
            f"unknown category {unknown[0]!r} in the traffic mix "
            f"(known: {', '.join(config.category_names)})"
        )
    even = total / len(config.categories)
    merged = deep_merge(scenario, {
        "name": f"{scenario.get('name', 'custom')} on {_routes_name(config)}",
        "description": "traffic and infrastructure of the scenario, categories, models and "
                       "prices of the routes file",
        "models": routes_prices(config.source_path),
        "premium_category": config.dearest_category(),
        "routing": {
            "classifier_model": config.classifier.model_id,
            "embedding_model": config.embedding.model_id,
        },
    })
    merged.pop("blog_figures", None)  # the blog's figures are for its categories, not these
    merged["categories"] = {
        name: {
            "questions_per_day": to_decimal(per_day.get(name, even), f"traffic of {name}"),
            "answerer": config.answerer_for(name),
            "lambda_duration_seconds": duration,
        }
        for name in config.categories
    }
    return merged


def _routes_name(config: RoutesConfig) -> str:
    path = config.source_path
    return f"{path.name if path else 'routes'} ({config.preset})"


def load_scenario(
    paths: Iterable[str | Path] = (), routes: RoutesConfig | None = None
) -> dict[str, Any]:
    """The default scenario with each file of ``paths`` deep-merged over it, in order.

    Model prices come from routes.json's ``prices`` table; a scenario's ``models`` section, if
    any, is laid over it (see ``costs.prices``). With ``routes``, the default is first priced for
    that configuration (:func:`for_routes`, even traffic), then the files are laid over it."""
    scenario = deep_merge({"models": routes_prices()}, read_scenario_file(DEFAULT_SCENARIO_PATH))
    if routes is not None:
        scenario = for_routes(scenario, routes)
    for path in paths:
        scenario = deep_merge(scenario, read_scenario_file(path))
    return scenario


def apply_overrides(scenario: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``scenario`` with a partial scenario laid over it, validated."""
    merged = deep_merge(scenario, overrides)
    validate_scenario(merged)
    return merged


def entries(table: Mapping[str, Any]) -> dict[str, Any]:
    """The real entries of a scenario object: keys starting with ``_`` are comments."""
    return {key: value for key, value in table.items() if not key.startswith("_")}


def to_decimal(value: Any, what: str) -> Decimal:
    """A number from a scenario or the command line, exactly; ``a/b`` fractions are allowed."""
    if isinstance(value, bool):
        raise CostError(f"{what} must be a number, not {value!r}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    if isinstance(value, str):
        text = value.strip().replace("_", "").replace(",", "")
        try:
            if "/" in text:
                numerator, denominator = text.split("/", 1)
                return Decimal(numerator) / Decimal(denominator)
            number = Decimal(text)
        except (InvalidOperation, ZeroDivisionError, ValueError):
            raise CostError(f"{what} must be a number, not {value!r}") from None
        if not number.is_finite():
            raise CostError(f"{what} must be a finite number, not {value!r}")
        return number
    raise CostError(f"{what} must be a number, not {value!r}")


def _number(
    table: Mapping[str, Any],
    key: str,
    where: str,
    *,
    minimum: Decimal | int = 0,
    maximum: Decimal | int | None = None,
) -> Decimal:
    if key not in table or table[key] is None:
        raise CostError(f"{where}.{key} is missing")
    value = to_decimal(table[key], f"{where}.{key}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise CostError(f"{where}.{key} must be at least {minimum}{upper}, not {value}")
    return value


def _object(table: Mapping[str, Any], key: str, where: str = "scenario") -> Mapping[str, Any]:
    value = table.get(key)
    if not isinstance(value, Mapping):
        raise CostError(f"{where}.{key} must be a JSON object")
    return value


def _known(name: str, kind: str, known: Iterable[str], hint: str = "") -> None:
    names = sorted(known)
    if name not in names:
        listed = ", ".join(names) or "none"
        raise CostError(f"unknown {kind} {name!r} (known: {listed}){hint}")


def _priced(model_id: str, kind: str, models: Mapping[str, Any], hint: str) -> None:
    """A model must have a price (its own or its foundation model's): unknown is never zero."""
    if price_key(models, model_id) is None:
        _known(model_id, kind, models, hint)


def validate_scenario(scenario: Mapping[str, Any]) -> None:
    """Raise ``CostError`` naming the first missing, unknown or out-of-range input."""
    _number(scenario, "days_per_month", "scenario", minimum=Decimal("0.000001"))
    tokens = _object(scenario, "tokens")
    _number(tokens, "input_per_question", "tokens")
    _number(tokens, "output_per_answer", "tokens")

    models = entries(_object(scenario, "models"))
    if not models:
        raise CostError("scenario.models is empty")
    for model_id, prices in models.items():
        if not isinstance(prices, Mapping):
            raise CostError(f"models.{model_id} must be a JSON object of prices")
        _number(prices, "input_per_1k", f"models.{model_id}")
        _number(prices, "output_per_1k", f"models.{model_id}")
    price_hint = (
        " — add it to routes.json's prices, or give a what-if price with --price MODEL_ID=IN/OUT "
        "or in a --scenario file's models"
    )

    categories = entries(_object(scenario, "categories"))
    if not categories:
        raise CostError("scenario.categories is empty")
    for name, category in categories.items():
        where = f"categories.{name}"
        if not isinstance(category, Mapping):
            raise CostError(f"{where} must be a JSON object")
        _number(category, "questions_per_day", where)
        _number(category, "lambda_duration_seconds", where)
        answerer = category.get("answerer")
        if not isinstance(answerer, str):
            raise CostError(f"{where}.answerer must be a model id")
        _priced(answerer, f"model (answerer of {name})", models, price_hint)
    _known(str(scenario.get("premium_category")), "premium category", categories)

    routing = _object(scenario, "routing")
    _priced(str(routing.get("classifier_model")), "classifier model", models, price_hint)
    _priced(str(routing.get("embedding_model")), "embedding model", models, price_hint)
    _number(routing, "classifier_output_tokens", "routing")
    _number(routing, "classifier_prompt_overhead_tokens", "routing")
    if not isinstance(routing.get("classifier_output_tokens_counted"), bool):
        raise CostError("routing.classifier_output_tokens_counted must be true or false")
    if routing.get("hybrid_escalation_rate") is not None:
        _number(routing, "hybrid_escalation_rate", "routing", maximum=1)

    lam = _object(scenario, "lambda")
    architecture = lam.get("architecture")
    if architecture not in ARCHITECTURES:
        raise CostError(f"lambda.architecture must be one of {', '.join(ARCHITECTURES)}")
    per_gb_second = _object(lam, "price_per_gb_second", "lambda")
    _number(per_gb_second, str(architecture), "lambda.price_per_gb_second")
    _number(lam, "memory_mb", "lambda", minimum=128, maximum=10240)
    _number(lam, "ephemeral_mb", "lambda", minimum=512, maximum=10240)
    _number(lam, "price_per_million_requests", "lambda")
    _number(lam, "ephemeral_price_per_gb_second", "lambda")
    _number(lam, "ephemeral_free_mb", "lambda")

    api = _object(scenario, "api_gateway")
    _number(api, "price_per_million_requests", "api_gateway")

    free = _object(scenario, "free_tier")
    if not isinstance(free.get("enabled"), bool):
        raise CostError("free_tier.enabled must be true or false")
    if free.get("scope") not in FREE_TIER_SCOPES:
        raise CostError(f"free_tier.scope must be one of {', '.join(FREE_TIER_SCOPES)}")
    for key in ("lambda_requests", "lambda_gb_seconds", "api_gateway_requests"):
        _number(free, key, "free_tier")
