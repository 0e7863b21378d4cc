"""The multi-LLM router's monthly bill, computed from prices kept as data.

Three steps of small pure functions, one concern a module:

- ``prices``: model prices, from the ``prices`` table of ``routes.json`` (shared with the
  function and ``evaluate.py``), exact; a scenario's ``models`` section overrides it.
- ``scenario``: ``load_scenario`` (JSON files, deep-merged over the default) and
  ``apply_overrides`` (a partial scenario, which is what the command-line flags become), both
  validated; bad input raises ``CostError``.
- ``calculation``: ``compute`` turns a scenario into a ``Report``, the frozen dataclasses of
  ``report`` (the names callers read a report by are re-exported here; the rest stay there).
- ``text_report`` / ``json_report``: ``render_text`` / ``report_to_dict`` present it, writing
  money and counts through ``formatting``.

``scripts/cost_calculator.py`` is the command line over these; ``scripts/evaluate.py`` prices the
router's measured decisions with the same functions.
"""

from .calculation import (
    CALCULATOR_DAYS_PER_MONTH,
    compute,
    compute_answers,
    compute_baseline,
    compute_infrastructure,
    compute_routing,
    compute_strategies,
    model_prices,
)
from .formatting import cents
from .json_report import render_json, report_to_dict
from .prices import price_key, routes_prices
from .report import (
    HYBRID,
    LLM_ASSISTED,
    SEMANTIC,
    STRATEGY_LABELS,
    AnswerLine,
    Baseline,
    Report,
    RoutingLine,
)
from .scenario import (
    ARCHITECTURES,
    DEFAULT_SCENARIO_PATH,
    FREE_TIER_SCOPES,
    CostError,
    apply_overrides,
    deep_merge,
    entries,
    for_routes,
    load_scenario,
    read_scenario_file,
    to_decimal,
    validate_scenario,
)
from .text_report import explain_infrastructure, render_text

__all__ = [
    "ARCHITECTURES",
    "CALCULATOR_DAYS_PER_MONTH",
    "DEFAULT_SCENARIO_PATH",
    "FREE_TIER_SCOPES",
    "HYBRID",
    "LLM_ASSISTED",
    "SEMANTIC",
    "STRATEGY_LABELS",
    "AnswerLine",
    "Baseline",
    "CostError",
    "Report",
    "RoutingLine",
    "apply_overrides",
    "cents",
    "compute",
    "compute_answers",
    "compute_baseline",
    "compute_infrastructure",
    "compute_routing",
    "compute_strategies",
    "deep_merge",
    "entries",
    "for_routes",
    "explain_infrastructure",
    "load_scenario",
    "model_prices",
    "price_key",
    "read_scenario_file",
    "render_json",
    "render_text",
    "report_to_dict",
    "routes_prices",
    "to_decimal",
    "validate_scenario",
]
