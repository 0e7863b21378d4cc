"""llm_router.governance.pricing: one call's cost from routes.json's price table, unknown never
zero."""

from __future__ import annotations

from decimal import Decimal

import costs
import pytest
from conftest import HAIKU, SONNET, TITAN_EMBED
from llm_router.config import RoutesConfig, load_routes
from llm_router.governance.pricing import cost_usd


@pytest.fixture(scope="module")
def config() -> RoutesConfig:
    return load_routes(preset="blog-2024")


def test_the_blogs_answer_calls_cost_what_the_calculator_says_per_question(
    config: RoutesConfig,
) -> None:
    # The calculator's monthly answer cost over its 1.5M questions a category is one call's cost.
    report = costs.compute(costs.load_scenario())
    for line in report.answers:
        per_call = cost_usd(config, line.model_id, 150, 300)
        assert per_call is not None
        assert Decimal(str(per_call)).quantize(Decimal("1e-9")) == (
            line.monthly_cost / line.questions
        ).quantize(Decimal("1e-9"))
    assert cost_usd(config, HAIKU, 150, 300) == pytest.approx(0.0004125)
    assert cost_usd(config, SONNET, 150, 300) == pytest.approx(0.00495)
    assert cost_usd(config, TITAN_EMBED, 8, 0) == pytest.approx(8 * 0.00002 / 1000)


def test_an_inference_profile_costs_what_its_foundation_model_does(config: RoutesConfig) -> None:
    assert cost_usd(config, f"us.{SONNET}", 1000, 1000) == cost_usd(config, SONNET, 1000, 1000)
    arn = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.{HAIKU}"
    assert cost_usd(config, arn, 1000, 0) == pytest.approx(0.00025)


def test_a_model_without_a_price_is_unknown_not_free(config: RoutesConfig) -> None:
    assert cost_usd(config, "example.unpriced-model-v1:0", 100, 100) is None
    assert cost_usd(config, "example.unpriced-model-v1:0", 0, 0) is None
    assert cost_usd(config, HAIKU, 0, 0) == 0.0
