"""Route-decision overhead per request, through the real Lambda handler and service.

The time the router's own code spends per request: the wall time of ``RouterHandler`` called with
an API Gateway proxy event, minus the time spent inside the bedrock-runtime client. The client is
an in-process fake that answers at once and times itself, so model time is ~0 and is subtracted
exactly.

The service is built with the environment the stack gives the router function
(:mod:`benchmarks.stack_env`): the budget guard's table (moto's DynamoDB on loopback, a thread of
this process, so its time and CPU count in the overhead; in AWS a DynamoDB round trip is a network
call instead) and tracing as configured (a sampled trace header, segments sent over UDP to the
daemon address, as in Lambda).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from apigw_events import LocalLambdaContext, proxy_event

from .index_cache import EMBEDDING_SOURCE, PreparedIndex
from .stack_env import StackEnvironment, applied, placed

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


class AwsRoundTrips:
    """Times the HTTP round trips botocore makes (``Endpoint._send``: the request on the wire
    until the response is read) while active; the fake Bedrock client makes none, so this is the
    AWS APIs the function calls besides Bedrock (DynamoDB). ``seconds`` is the wall time during
    which at least one round trip was in flight: a request's end writes run concurrently, and
    their sum would count the overlap twice. Patches a private botocore method because
    botocore's public events do not bracket the send of a client one does not own."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self.operations: dict[str, int] = {}  # e.g. DynamoDB_20120810.UpdateItem -> calls
        self._patch: Any = None
        self._lock = threading.Lock()
        self._in_flight = 0
        self._since = 0.0

    def restart(self) -> None:
        with self._lock:
            self.seconds, self.calls = 0.0, 0

    def _began(self) -> None:
        with self._lock:
            if self._in_flight == 0:
                self._since = time.perf_counter()
            self._in_flight += 1

    def _ended(self, request: Any) -> None:
        target = request.headers.get("X-Amz-Target", "other")
        name = target.decode() if isinstance(target, bytes) else str(target)
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self.seconds += time.perf_counter() - self._since
            self.calls += 1
            self.operations[name] = self.operations.get(name, 0) + 1

    def __enter__(self) -> AwsRoundTrips:
        from unittest import mock

        from botocore.endpoint import Endpoint

        original = Endpoint._send

        def timed(endpoint: Any, request: Any) -> Any:
            self._began()
            try:
                return original(endpoint, request)
            finally:
                self._ended(request)

        self._patch = mock.patch.object(Endpoint, "_send", timed)
        self._patch.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._patch.stop()


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


TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def measure_overhead(
    prepared: PreparedIndex, requests: int, stack_env: StackEnvironment
) -> dict[str, Any]:
    """Handler time minus model time per request, through the real handler and service, with
    the stack's environment for the router function."""
    # Imported first: with AWS_LAMBDA_FUNCTION_NAME set, importing the handler module builds the
    # module-level router (the Lambda init phase), which this benchmark replaces by its own.
    import llm_router.edge.handler  # noqa: F401
    from llm_router.pipeline.factory import SEMANTIC_INDEX_DIR_ENV

    variables = placed(stack_env, {SEMANTIC_INDEX_DIR_ENV: str(prepared.directory)})
    lambda_env = {"AWS_LAMBDA_FUNCTION_NAME": f"{STRATEGY}-router"}
    if stack_env.traced:
        lambda_env["_X_AMZN_TRACE_ID"] = TRACE_HEADER
    with applied({**variables, **lambda_env}):
        return {
            **_measure(prepared, requests),
            "stack_variables": sorted(variables),
            "traced": stack_env.traced,
        }


def _measure(prepared: PreparedIndex, requests: int) -> dict[str, Any]:
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
    aws: list[float] = []
    aws_calls = 0
    statuses: dict[int, int] = {}
    decisions: dict[str, int] = {}
    with stdout_to_devnull(), AwsRoundTrips() as trips:
        for i in range(total):
            fake.select(i)
            trips.restart()
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
            aws.append(trips.seconds)
            aws_calls += trips.calls
    if set(statuses) != {200}:
        raise RuntimeError(f"the handler did not answer every request with 200: {statuses}")
    return {
        "requests": requests,
        "warmup_requests": WARMUP_REQUESTS,
        "overhead_ms": percentiles_ms(overhead),
        "handler_ms": percentiles_ms(handler_seconds),
        "model_ms": percentiles_ms(model),
        # HTTP round trips to AWS APIs (the budget guard's DynamoDB, to moto here) inside the
        # overhead: a network call in AWS, a thread of this process here.
        "aws_round_trip_ms": percentiles_ms(aws),
        "overhead_without_aws_round_trips_ms": percentiles_ms(
            [o - a for o, a in zip(overhead, aws, strict=True)]
        ),
        "aws_calls_per_request": aws_calls / requests,
        "aws_operations": trips.operations,  # warm-up requests included
        "decisions": decisions,
        "bedrock_calls": fake.calls,
        "in_process_index_load_seconds": load_seconds,
    }
