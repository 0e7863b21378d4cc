"""Route-decision overhead per request, through the real Lambda handler and service.

The time the router's own code spends per request: the wall time of ``RouterHandler`` called with
an API Gateway proxy event, minus the time spent inside the bedrock-runtime client. The client is
an in-process fake that answers at once and times itself, so model time is ~0 and is subtracted
exactly.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from apigw_events import LocalLambdaContext, proxy_event

from .index_cache import EMBEDDING_SOURCE, PreparedIndex

STRATEGY = "semantic"
WARMUP_REQUESTS = 5

FAKE_ANSWER = "A synthetic answer from the benchmark's fake Bedrock client."


class FakeBedrockRuntime:
    """An in-process bedrock-runtime client that answers at once and times itself.

    ``invoke_model`` returns a Titan Text Embeddings V2 payload (the selected query vector);
    ``converse`` a Converse response. ``model_seconds`` is the time spent inside the client during
    the current request, which the benchmark subtracts from the handler's time.
    """

    def __init__(self, queries: np.ndarray) -> None:
        # Serialised up front, so the fake does no work per call beyond wrapping bytes.
        self._payloads = [
            json.dumps(
                {"embedding": np.asarray(q, dtype=np.float64).tolist(), "inputTextTokenCount": 9}
            ).encode()
            for q in queries
        ]
        self._current = 0
        self.model_seconds = 0.0
        self.calls: dict[str, int] = {"invoke_model": 0, "converse": 0}

    def select(self, query: int) -> None:
        """The next request embeds to query ``query``; restarts the model-time clock."""
        self._current = query % len(self._payloads)
        self.model_seconds = 0.0

    def invoke_model(self, modelId: str, body: str, contentType: str, accept: str) -> Any:  # noqa: N803
        started = time.perf_counter()
        response = {
            "body": io.BytesIO(self._payloads[self._current]),
            "contentType": accept,
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }
        self.calls["invoke_model"] += 1
        self.model_seconds += time.perf_counter() - started
        return response

    def converse(self, modelId: str, **_request: Any) -> dict[str, Any]:  # noqa: N803
        started = time.perf_counter()
        response = {
            "output": {"message": {"role": "assistant", "content": [{"text": FAKE_ANSWER}]}},
            "usage": {"inputTokens": 60, "outputTokens": 12, "totalTokens": 72},
            "stopReason": "end_turn",
            "metrics": {"latencyMs": 0},
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }
        self.calls["converse"] += 1
        self.model_seconds += time.perf_counter() - started
        return response


@contextlib.contextmanager
def stdout_to_devnull() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null: Powertools' log lines and metrics are still formatted
    and written (their cost counts), but do not flood the report."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    values = np.asarray(seconds, dtype=np.float64) * 1000
    p50, p99 = np.percentile(values, [50, 99])
    return {"p50": float(p50), "p99": float(p99), "mean": float(values.mean())}


def measure_overhead(prepared: PreparedIndex, requests: int) -> dict[str, Any]:
    """Handler time minus model time per request, through the real handler and service."""
    from llm_router.edge.handler import RouterHandler
    from llm_router.pipeline.factory import build_service

    fake = FakeBedrockRuntime(prepared.queries)
    started = time.perf_counter()
    service = build_service(
        STRATEGY,
        prepared.config,
        client=fake,
        index_dir=prepared.directory,
        embedding_source=EMBEDDING_SOURCE,
    )
    load_seconds = time.perf_counter() - started
    with stdout_to_devnull():  # the "router ready" log line
        handler = RouterHandler(service_factory=lambda: service, eager=True)
    total = WARMUP_REQUESTS + requests
    events = [
        proxy_event(json.dumps({"question": f"Synthetic benchmark question number {i}?"}))
        for i in range(total)
    ]
    contexts = [LocalLambdaContext() for _ in range(total)]
    handler_seconds: list[float] = []
    overhead: list[float] = []
    model: list[float] = []
    statuses: dict[int, int] = {}
    decisions: dict[str, int] = {}
    with stdout_to_devnull():
        for i in range(total):
            fake.select(i)
            started = time.perf_counter()
            response = handler(events[i], contexts[i])
            elapsed = time.perf_counter() - started
            if i < WARMUP_REQUESTS:
                continue
            statuses[response["statusCode"]] = statuses.get(response["statusCode"], 0) + 1
            if response["statusCode"] == 200:
                category = json.loads(response["body"])["question_classification"]
                decisions[category] = decisions.get(category, 0) + 1
            handler_seconds.append(elapsed)
            model.append(fake.model_seconds)
            overhead.append(elapsed - fake.model_seconds)
    if set(statuses) != {200}:
        raise RuntimeError(f"the handler did not answer every request with 200: {statuses}")
    return {
        "requests": requests,
        "warmup_requests": WARMUP_REQUESTS,
        "overhead_ms": percentiles_ms(overhead),
        "handler_ms": percentiles_ms(handler_seconds),
        "model_ms": percentiles_ms(model),
        "decisions": decisions,
        "bedrock_calls": fake.calls,
        "in_process_index_load_seconds": load_seconds,
    }
