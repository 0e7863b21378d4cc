"""Model prices for the calculator: the ``prices`` table of ``routes.json``, read as exact Decimals.

One price table serves the function (``usage.cost_usd`` in every response), ``evaluate.py`` and
this calculator, so a price is changed in one place. The table is validated by the routing core's
own parser (``llm_router.config.settings.parse_prices``) and then re-read with
``parse_float=Decimal``,
because the calculator must reproduce the blog's cents exactly and floats would drift.

A scenario's ``models`` section is now an optional override layer laid over this table (a what-if
price, a model the table lacks): ``{"models": {"MODEL_ID": {"input_per_1k": ..}}}``. The default
scenario has none, so its figures are the table's. An inference-profile id (``us.anthropic...``) is
priced as its foundation model, as the function does
(``llm_router.config.settings.priced_model_id``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from llm_router.config import find_routes_file
from llm_router.config.settings import SettingsError, parse_prices, priced_model_id

from .errors import CostError


def routes_prices(path: str | Path | None = None) -> dict[str, dict[str, Decimal]]:
    """``{model_id: {"input_per_1k", "output_per_1k"}}`` from routes.json (``ROUTES_FILE`` or the
    checkout's), comment keys left out; ``CostError`` when the file or the table is malformed."""
    try:
        source = Path(path) if path else find_routes_file()
        raw = json.loads(source.read_text(encoding="utf-8"), parse_float=Decimal)
    except (OSError, ValueError) as exc:  # ConfigError and JSONDecodeError are ValueErrors
        raise CostError(f"cannot read the price table in routes.json: {exc}") from None
    try:
        parse_prices(raw)  # the function's validation: the two readers cannot disagree
    except SettingsError as exc:
        raise CostError(f"routes.json: {exc}") from None
    return {
        model_id: {
            "input_per_1k": Decimal(str(spec["input_per_1k"])),
            "output_per_1k": Decimal(str(spec["output_per_1k"])),
        }
        for model_id, spec in raw.get("prices", {}).items()
        if not model_id.startswith("_")
    }


def price_key(models: Mapping[str, Any], model_id: str) -> str | None:
    """The key ``model_id`` is priced under in ``models``: itself, else its foundation model."""
    if model_id in models:
        return model_id
    foundation = priced_model_id(model_id)
    return foundation if foundation in models else None
