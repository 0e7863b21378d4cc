"""Titan Text Embeddings V2 through InvokeModel, with the request body Bedrock documents."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..config import EmbeddingConfig
from ..models.bedrock import as_failure
from ..observability.tracing import subsegment
from ..records import record


@record(frozen=True)
class Embedding:
    vector: np.ndarray  # float32, shape (dimensions,)
    input_tokens: int


class TitanEmbedder:
    """Embeds one text per call, as Titan V2 takes a single ``inputText``."""

    def __init__(self, client: Any, config: EmbeddingConfig) -> None:
        self._client = client
        self.config = config

    @property
    def model_id(self) -> str:
        return self.config.model_id

    def embed(self, text: str) -> Embedding:
        body = {
            "inputText": text,
            "dimensions": self.config.dimensions,
            "normalize": self.config.normalize,
        }
        try:
            with subsegment("embedding"):
                response = self._client.invoke_model(
                    modelId=self.config.model_id,
                    body=json.dumps(body),
                    contentType="application/json",
                    accept="application/json",
                )
            payload = json.loads(response["body"].read())
        except Exception as exc:  # translated into an HTTP-ready failure
            raise as_failure(exc, self.config.model_id, "embedding") from exc
        vector = np.asarray(payload["embedding"], dtype=np.float32)
        if vector.shape != (self.config.dimensions,):
            raise ValueError(
                f"{self.config.model_id} returned {vector.shape[0]} dimensions, "
                f"expected {self.config.dimensions}"
            )
        return Embedding(vector=vector, input_tokens=int(payload.get("inputTextTokenCount", 0)))
