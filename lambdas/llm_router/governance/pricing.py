"""What a model call cost, from the one price table (``routes.json`` ``prices``).

The function (``usage.cost_usd``), ``scripts/evaluate.py`` and the cost calculator read the same
table (the calculator in exact Decimals, through ``scripts/costs/prices.py``); this module is the
float view for code that prices single calls at runtime. A model the table does not list has an
*unknown* cost, ``None``, never zero, so a missing price cannot make a bill look smaller than it
is (``pipeline.response.total_cost`` keeps a total with an unknown part unknown).
"""

from __future__ import annotations

from ..config import RoutesConfig


def cost_usd(
    config: RoutesConfig, model_id: str, input_tokens: int, output_tokens: int
) -> float | None:
    """USD for one call (a profile costs what its foundation model does); None when unknown."""
    price = config.price_of(model_id)
    return None if price is None else price.cost_usd(input_tokens, output_tokens)
