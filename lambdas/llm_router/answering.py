"""Answer generation through the Bedrock Converse API.

Converse takes the same request for every Bedrock chat model, so an answerer can be any model id,
a cross-region inference profile or an Intelligent Prompt Routing router ARN; for a prompt router
Bedrock reports the model it invoked in ``trace.promptRouter.invokedModelId``, which is what the
response names as the answerer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .bedrock import as_failure
from .classification import ModelUsage
from .config import AnsweringConfig


@dataclass(frozen=True)
class Answer:
    text: str
    requested_model_id: str
    invoked_model_id: str
    seconds: float
    usage: ModelUsage
    stop_reason: str


class ConverseAnswerer:
    def __init__(self, client: Any, config: AnsweringConfig) -> None:
        self._client = client
        self._config = config

    def answer(self, question: str, model_id: str) -> Answer:
        started = time.perf_counter()
        try:
            response = self._client.converse(
                modelId=model_id,
                system=[{"text": self._config.system_prompt}],
                messages=[{"role": "user", "content": [{"text": question}]}],
                inferenceConfig={
                    "maxTokens": self._config.max_tokens,
                    "temperature": self._config.temperature,
                },
            )
        except Exception as exc:
            raise as_failure(exc, model_id, "answer generation") from exc
        seconds = time.perf_counter() - started
        text = "".join(
            block.get("text", "") for block in response["output"]["message"]["content"]
        )
        invoked = (
            response.get("trace", {}).get("promptRouter", {}).get("invokedModelId") or model_id
        )
        tokens = response.get("usage", {})
        usage = ModelUsage(
            invoked, int(tokens.get("inputTokens", 0)), int(tokens.get("outputTokens", 0))
        )
        return Answer(text, model_id, invoked, seconds, usage, response.get("stopReason", ""))
