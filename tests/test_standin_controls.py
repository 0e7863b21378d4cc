"""The stand-in's test controls added for resilience and hardening work: a bounded call log that
counts what it dropped, faults that hit a seeded fraction of calls, per-model delays that a reset
or shutdown cuts short, and ValidationException (not a crash) for invalid Unicode. Real boto3
clients and HTTP on loopback."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

import pytest
from bedrock_standin import StandInServer
from botocore.exceptions import ClientError
from conftest import HAIKU, TITAN_EMBED
from llm_router.models.bedrock import runtime_client


@pytest.fixture(scope="module")
def client(standin: Any) -> Any:
    return runtime_client("us-east-1", standin.url, max_attempts=1, credentials=("t", "t"))


def converse(client: Any, model_id: str = HAIKU, text: str = "hi") -> dict[str, Any]:
    return client.converse(
        modelId=model_id, messages=[{"role": "user", "content": [{"text": text}]}]
    )


def outcome(client: Any, model_id: str = HAIKU) -> str:
    try:
        converse(client, model_id)
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "ok"


def admin(url: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        f"{url}/_standin/{path}", data=data, method="GET" if data is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


# --- bounded call log ----------------------------------------------------------------------------


def test_call_log_keeps_the_last_calls_and_counts_the_dropped_ones() -> None:
    with StandInServer(call_log_size=3) as server:
        small = runtime_client("us-east-1", server.url, max_attempts=1, credentials=("t", "t"))
        for n in range(5):
            converse(small, text=f"question {n}")
        calls = server.calls()
        assert len(calls) == 3
        texts = [c["body"]["messages"][0]["content"][0]["text"] for c in calls]
        assert texts == ["question 2", "question 3", "question 4"]
        assert server.dropped_calls == 2
        listed = admin(server.url, "calls")
        assert (len(listed["calls"]), listed["dropped"], listed["capacity"]) == (3, 2, 3)
        server.reset()
        assert (server.calls(), server.dropped_calls) == ([], 0)


def test_call_log_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="call_log_size"):
        StandInServer(call_log_size=0)


# --- probabilistic faults ------------------------------------------------------------------------


def _pattern(client: Any, server: Any, n: int) -> list[str]:
    server.reset()
    server.inject_fault(HAIKU, "ThrottlingException", probability=0.3)
    return [outcome(client) for _ in range(n)]


def test_probabilistic_fault_fails_about_that_fraction_the_same_way_each_time(
    client: Any, fresh_standin: Any
) -> None:
    first = _pattern(client, fresh_standin, 200)
    second = _pattern(client, fresh_standin, 200)
    assert first == second  # seeded: a reset replays the same sequence
    failed = first.count("ThrottlingException")
    assert first.count("ok") + failed == 200
    assert 0.2 <= failed / 200 <= 0.4


def test_probability_and_count_combine(client: Any, fresh_standin: Any) -> None:
    fresh_standin.inject_fault(HAIKU, "ServiceUnavailableException", count=2, probability=0.5)
    results = [outcome(client) for _ in range(40)]
    assert results.count("ServiceUnavailableException") == 2
    assert results[-1] == "ok"


@pytest.mark.parametrize("probability", [0, -0.1, 1.5])
def test_probability_outside_0_1_is_refused(fresh_standin: Any, probability: float) -> None:
    with pytest.raises(ValueError, match="probability"):
        fresh_standin.inject_fault(HAIKU, "ThrottlingException", probability=probability)


def test_probabilistic_fault_over_http(client: Any, fresh_standin: Any) -> None:
    admin(fresh_standin.url, "faults",
          {"model_id": HAIKU, "error": "InternalServerException", "probability": 0.5})
    results = {outcome(client) for _ in range(30)}
    assert results == {"ok", "InternalServerException"}


# --- delays --------------------------------------------------------------------------------------


def test_delay_holds_only_that_model(client: Any, fresh_standin: Any) -> None:
    fresh_standin.set_delay(HAIKU, 0.3)
    started = time.monotonic()
    client.invoke_model(modelId=TITAN_EMBED, body=json.dumps({"inputText": "x"}))
    other = time.monotonic() - started
    started = time.monotonic()
    converse(client)
    delayed = time.monotonic() - started
    assert delayed >= 0.3 > other
    assert fresh_standin.calls()[-1]["delayed_seconds"] >= 0.3


def test_delayed_request_does_not_block_others(client: Any, fresh_standin: Any) -> None:
    fresh_standin.set_delay(HAIKU, 5)
    slow = threading.Thread(target=outcome, args=(client,))
    slow.start()
    try:
        time.sleep(0.1)
        started = time.monotonic()
        client.invoke_model(modelId=TITAN_EMBED, body=json.dumps({"inputText": "x"}))
        assert time.monotonic() - started < 1
    finally:
        fresh_standin.reset()  # wakes the slow request
        slow.join(timeout=5)
    assert not slow.is_alive()


def test_reset_cuts_a_delay_short(client: Any, fresh_standin: Any) -> None:
    fresh_standin.set_delay("*", 30)
    done: list[float] = []
    started = time.monotonic()
    worker = threading.Thread(target=lambda: (outcome(client), done.append(time.monotonic())))
    worker.start()
    time.sleep(0.2)
    fresh_standin.reset()
    worker.join(timeout=5)
    assert done and done[0] - started < 3


def test_stop_cuts_a_delay_short() -> None:
    server = StandInServer().start()
    own = runtime_client("us-east-1", server.url, max_attempts=1, credentials=("t", "t"))
    server.set_delay(HAIKU, 30)
    worker = threading.Thread(target=outcome, args=(own,), daemon=True)
    worker.start()
    time.sleep(0.2)
    started = time.monotonic()
    server.stop()
    worker.join(timeout=5)
    assert time.monotonic() - started < 3
    assert not worker.is_alive()


def test_delays_over_http(client: Any, fresh_standin: Any) -> None:
    assert admin(fresh_standin.url, "delays", {"model_id": HAIKU, "seconds": 0.2}) == {
        "delays": {HAIKU: 0.2}, "per_chunk_delays": {}
    }
    assert admin(fresh_standin.url, "delays") == {"delays": {HAIKU: 0.2}, "per_chunk_delays": {}}
    started = time.monotonic()
    converse(client)
    assert time.monotonic() - started >= 0.2
    assert admin(fresh_standin.url, "delays", {"model_id": HAIKU, "seconds": 0}) == {
        "delays": {}, "per_chunk_delays": {}
    }


@pytest.mark.parametrize("seconds", [-1, "soon"])
def test_bad_delay_is_a_400(fresh_standin: Any, seconds: Any) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        admin(fresh_standin.url, "delays", {"model_id": HAIKU, "seconds": seconds})
    assert info.value.code == 400


# --- invalid input -------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    b'{"inputText": "lone \\ud800 surrogate"}',
    b'{"inputText": "x", "\\udfff": 1}',
    b"[" * 5000 + b"]" * 5000,
    b'{"inputText": "x", "dimensions": ' + b"9" * 5000 + b"}",
])
def test_invalid_bodies_are_validation_exceptions_not_crashes(
    client: Any, fresh_standin: Any, body: bytes
) -> None:
    with pytest.raises(ClientError) as info:
        client.invoke_model(modelId=TITAN_EMBED, body=body)
    error = info.value.response
    assert error["Error"]["Code"] == "ValidationException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "Error" not in error["Error"]["Message"]  # no Python exception class in the message


def test_lone_surrogate_in_converse_is_a_validation_exception(
    client: Any, fresh_standin: Any
) -> None:
    with pytest.raises(ClientError) as info:
        converse(client, text="lone \ud800 surrogate")
    assert info.value.response["Error"]["Code"] == "ValidationException"
