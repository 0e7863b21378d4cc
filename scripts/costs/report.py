"""The report's figures as frozen dataclasses: what a monthly bill is made of.

Kept apart from the arithmetic so that the renderers and other code (``scripts/evaluate.py``)
depend on the shape of the figures, not on how they are computed. Frozen because a report is a
result, never edited; totals are properties, so they can never disagree with their parts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

LLM_ASSISTED = "llm-assisted"
SEMANTIC = "semantic"
HYBRID = "hybrid"
STRATEGY_LABELS = {LLM_ASSISTED: "LLM-assisted", SEMANTIC: "semantic", HYBRID: "hybrid"}


@dataclass(frozen=True)
class AnswerLine:
    """Answer generation for one category in a month."""

    category: str
    model_id: str
    questions: Decimal
    input_tokens: Decimal
    output_tokens: Decimal
    input_cost: Decimal
    output_cost: Decimal

    @property
    def monthly_cost(self) -> Decimal:
        return self.input_cost + self.output_cost


@dataclass(frozen=True)
class ModelCall:
    """One routing model's use in a month: the classifier LLM or the embedding model."""

    role: str  # "classifier" or "embeddings"
    model_id: str
    requests: Decimal
    input_tokens: Decimal
    output_tokens: Decimal
    input_cost: Decimal
    output_cost: Decimal


@dataclass(frozen=True)
class RoutingLine:
    """The routing bill of one strategy. ``monthly_cost`` follows the scenario's
    ``classifier_output_tokens_counted``; ``monthly_cost_with_output_tokens`` always counts them."""

    strategy: str
    calls: tuple[ModelCall, ...]
    output_tokens_counted: bool
    escalation_rate: Decimal | None = None

    @property
    def input_tokens(self) -> Decimal:
        return sum((call.input_tokens for call in self.calls), Decimal(0))

    @property
    def output_tokens(self) -> Decimal:
        return sum((call.output_tokens for call in self.calls), Decimal(0))

    @property
    def input_cost(self) -> Decimal:
        return sum((call.input_cost for call in self.calls), Decimal(0))

    @property
    def output_cost(self) -> Decimal:
        return sum((call.output_cost for call in self.calls), Decimal(0))

    @property
    def monthly_cost_with_output_tokens(self) -> Decimal:
        return self.input_cost + self.output_cost

    @property
    def monthly_cost(self) -> Decimal:
        if self.output_tokens_counted:
            return self.monthly_cost_with_output_tokens
        return self.input_cost


@dataclass(frozen=True)
class InfraCost:
    """Lambda + API Gateway in a month; every strategy runs the same functions behind one API."""

    architecture: str
    memory_mb: Decimal
    ephemeral_mb: Decimal
    days_per_month: Decimal
    free_tier: bool
    free_tier_scope: str
    requests: Decimal
    gb_seconds: Decimal
    free_gb_seconds: Decimal
    price_per_gb_second: Decimal
    compute_cost: Decimal
    free_requests: Decimal
    price_per_million_requests: Decimal
    request_cost: Decimal
    ephemeral_gb_seconds: Decimal
    ephemeral_price_per_gb_second: Decimal
    ephemeral_cost: Decimal
    api_gateway_type: str
    api_free_requests: Decimal
    api_price_per_million_requests: Decimal
    api_gateway_cost: Decimal

    @property
    def lambda_cost(self) -> Decimal:
        return self.compute_cost + self.request_cost + self.ephemeral_cost

    @property
    def monthly_cost(self) -> Decimal:
        return self.lambda_cost + self.api_gateway_cost


@dataclass(frozen=True)
class StrategyTotal:
    """One strategy's monthly bill, and its saving against answering everything with premium."""

    strategy: str
    answers: Decimal
    routing: Decimal
    infrastructure: Decimal
    saving: Decimal
    saving_percent: Decimal

    @property
    def total(self) -> Decimal:
        return self.answers + self.routing + self.infrastructure


@dataclass(frozen=True)
class Baseline:
    """No router: every question answered by the premium category's model."""

    category: str
    model_id: str
    questions: Decimal
    answers: Decimal
    infrastructure: Decimal

    @property
    def total(self) -> Decimal:
        return self.answers + self.infrastructure


@dataclass(frozen=True)
class Report:
    """Every figure of one scenario's monthly bill, as ``compute`` returns it."""

    scenario_name: str
    currency: str
    days_per_month: Decimal
    input_tokens_per_question: Decimal
    output_tokens_per_answer: Decimal
    classifier_output_tokens: Decimal
    answers: tuple[AnswerLine, ...]
    routing: tuple[RoutingLine, ...]
    infrastructure: InfraCost
    # The same inputs under the AWS Pricing Calculator's conventions, to set beside the blog.
    infrastructure_calculator: InfraCost
    strategies: tuple[StrategyTotal, ...]
    baseline: Baseline
    blog_figures: Mapping[str, Any]
    notes: tuple[str, ...]
    # This deployment's own costs (costs.deployment.DeploymentCosts), when the scenario has its
    # inputs (a ``deployment`` section); typed loosely to keep this module free of that one.
    deployment: Any = None

    @property
    def questions(self) -> Decimal:
        return sum((line.questions for line in self.answers), Decimal(0))

    @property
    def answers_cost(self) -> Decimal:
        return sum((line.monthly_cost for line in self.answers), Decimal(0))

    def routing_for(self, strategy: str) -> RoutingLine | None:
        return next((line for line in self.routing if line.strategy == strategy), None)
