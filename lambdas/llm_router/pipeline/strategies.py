"""The routing strategies the project deploys, as data: one entry per router.

The CDK app creates one stack per entry, the local server mounts one path per entry and the Lambda
handler picks its classifier by the entry's name, so adding a router is one entry here plus its
classifier module.
"""

from __future__ import annotations

from ..config import RoutesConfig
from ..records import record


@record(frozen=True)
class Strategy:
    name: str  # value of ROUTER_STRATEGY and the local path segment
    stack_name: str
    description: str
    uses_classifier_llm: bool
    uses_embeddings: bool

    @property
    def needs_index(self) -> bool:
        return self.uses_embeddings

    def decision_models(self, config: RoutesConfig) -> tuple[str, ...]:
        """Model ids the decision invokes (classifier, embedder): InvokeModel, never streamed."""
        models: list[str] = []
        if self.uses_classifier_llm:
            models.append(config.classifier.model_id)
        if self.uses_embeddings:
            models.append(config.embedding.model_id)
        return tuple(models)

    def invoked_models(self, config: RoutesConfig) -> tuple[str, ...]:
        """Model ids this router's Lambda may invoke: what its IAM policy must allow."""
        return tuple(dict.fromkeys((*self.decision_models(config), *config.answerer_model_ids())))


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy(
            name="llm-assisted",
            stack_name="LlmAssistedRouterStack",
            description="A classifier LLM names the category of each question.",
            uses_classifier_llm=True,
            uses_embeddings=False,
        ),
        Strategy(
            name="semantic",
            stack_name="SemanticRouterStack",
            description="The question's embedding is matched against labelled reference prompts.",
            uses_classifier_llm=False,
            uses_embeddings=True,
        ),
        Strategy(
            name="hybrid",
            stack_name="HybridRouterStack",
            description="Semantic routing when confident, the classifier LLM otherwise.",
            uses_classifier_llm=True,
            uses_embeddings=True,
        ),
    )
}


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(
            f"unknown routing strategy {name!r}; choose one of {', '.join(STRATEGIES)}"
        ) from None
