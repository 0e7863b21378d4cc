"""The local run end to end, as a user and a client meet it: ``scripts/local.py`` started as a
subprocess (offline Bedrock stand-in, no AWS credentials, loopback only), asked with the README's
own curl lines and with a plain HTTP client, then stopped with Ctrl-C.

The gateway's rules in detail are ``tests/test_local_api.py``'s (in-process); here the point is
the real program: its start-up, its banner, every router mounted from ``STRATEGIES``, API Gateway's
answers over a real socket, throttling from ``routes.json`` and a clean shutdown.

The first start builds the semantic index into ``.build/semantic-index/`` (a few hundred stand-in
embeddings, a couple of minutes on a small machine); later starts reuse it. Tests run in file
order and share one server, so the throttling tests, which empty routers' token buckets, and the
shutdown test come last.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from email.message import Message
from typing import Any

import pytest
from conftest import HAIKU, ORIGINAL_FIELDS, SONNET
from llm_router.config import load_routes
from llm_router.pipeline.strategies import STRATEGIES
from local_api.examples import (
    QUADRATIC_QUESTION,
    README_API_KEY,
    README_BASE_URL,
    README_CURLS,
    WW2_QUESTION,
    banner_examples,
    curl_line,
)

from layers import REPO_ROOT

LOCAL_PY = REPO_ROOT / "scripts" / "local.py"
API_KEY = "local-run-test-key"
START_TIMEOUT = 300.0  # the first start builds the semantic index with the stand-in
HEALTH_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
REQUEST_TIMEOUT = 60.0

CONFIG = load_routes()
THROTTLE_RATE = CONFIG.api.throttle_rate_limit
THROTTLE_BURST = CONFIG.api.throttle_burst_limit
OFF_TOPIC_QUESTION = "What's a good recipe for pasta carbonara?"
# The blog's two questions and where they must go (the blog-2024 preset, the README's run).
EXPECTED = {WW2_QUESTION: ("history", HAIKU), QUADRATIC_QUESTION: ("math", SONNET)}
# The response fields of the original sample; one of the *_LLM fields names the classifier.
CLASSIFIER_FIELDS = ("classifier_LLM", "embedding_LLM")
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy")
FORBIDDEN = {"message": "Forbidden"}
INVALID_BODY = {"message": "Invalid request body"}
TOO_MANY_REQUESTS = {"message": "Too Many Requests"}
MISSING_TOKEN = {"message": "Missing Authentication Token"}

# Proxies from the environment must not see loopback requests (and there is no network beyond).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def loopback_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without proxies: everything here talks to 127.0.0.1."""
    env = dict(os.environ if base is None else base)
    for name in list(env):
        if name.lower() in PROXY_VARIABLES:
            del env[name]
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def server_env() -> dict[str, str]:
    """No AWS credentials or profile at all: the local run must not need them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    env.pop("PYTHONUNBUFFERED", None)  # local.py must flush its ready line to a pipe by itself
    return loopback_env(env)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: Message

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> Reply:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=REQUEST_TIMEOUT) as response:
            return Reply(response.status, response.read(), response.headers)
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, error.read(), error.headers)


class LocalRun:
    """``scripts/local.py`` in a subprocess; its stdout and stderr, line by line, in ``lines``."""

    def __init__(self, port: int, api_key: str) -> None:
        self.port = port
        self.api_key = api_key
        self.base_url = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self.ready = threading.Event()
        self._lock = threading.Lock()
        self.process = subprocess.Popen(
            [sys.executable, str(LOCAL_PY), "--port", str(port), "--api-key", api_key],
            cwd=REPO_ROOT,
            env=server_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,  # a Ctrl-C in pytest's terminal is the fixture's to send
        )
        # Drained all the time: one log line per request must never fill the pipe and stall it.
        self._reader = threading.Thread(target=self._read, name="local-run-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.rstrip("\n")
            with self._lock:
                self.lines.append(line)
            if line.startswith("ready:"):
                self.ready.set()

    @property
    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.1):
            if not self.running:
                self._reader.join(5)
                pytest.fail(
                    f"scripts/local.py exited with {self.process.returncode} before its ready "
                    f"line; its output:\n{self.output}"
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"scripts/local.py not ready within {timeout:g}s; its output:\n{self.output}"
                )

    def wait_healthy(self, timeout: float) -> Reply:
        deadline = time.monotonic() + timeout
        while True:
            try:
                reply = http(f"{self.base_url}/health")
                if reply.status == 200:
                    return reply
            except OSError:  # not accepting yet
                pass
            if not self.running or time.monotonic() > deadline:
                pytest.fail(f"GET /health never answered 200; output:\n{self.output}")
            time.sleep(0.05)

    def interrupt(self) -> int | None:
        """Ctrl-C; the exit status, or None when it is still running after STOP_TIMEOUT."""
        if self.running:
            self.process.send_signal(signal.SIGINT)
        try:
            returncode = self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(5)
        return returncode

    def kill(self) -> None:
        """Whatever happened, leave no process behind."""
        if self.running:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)
        self._reader.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def assert_stops_cleanly(run: LocalRun) -> None:
    returncode = run.interrupt()
    assert returncode is not None, (
        f"still running {STOP_TIMEOUT:g}s after SIGINT; output:\n{run.output}"
    )
    assert returncode == 0, f"exit status {returncode} after SIGINT; output:\n{run.output}"
    assert any(line.startswith("stopped") for line in run.lines), run.output


@pytest.fixture(scope="module")
def local_run() -> Iterator[LocalRun]:
    run = LocalRun(free_port(), API_KEY)
    try:
        run.wait_ready(START_TIMEOUT)
        run.wait_healthy(HEALTH_TIMEOUT)
        yield run
        if run.running:  # the shutdown test did not run (deselected, or stopped early)
            assert_stops_cleanly(run)
    finally:
        run.kill()


def ask(
    run: LocalRun,
    router: str,
    body: Any,
    key: str | None = API_KEY,
    path: str | None = None,
    extra_headers: dict[str, str] | None = None,
) -> Reply:
    """POST to ``/<router>/ask``; a dict body is sent as JSON, bytes as they are."""
    headers = {"Content-Type": "application/json", **(extra_headers or {})}
    if key is not None:
        headers["x-api-key"] = key
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http(f"{run.base_url}{path or f'/{router}/ask'}", "POST", data, headers)


def assert_original_fields(body: dict[str, Any]) -> None:
    missing = [field for field in ORIGINAL_FIELDS if field not in body]
    assert not missing, f"missing {missing} in {body}"
    assert any(field in body for field in CLASSIFIER_FIELDS), body
    assert isinstance(body["answer"], str) and body["answer"], body
    for field in ("classification_time", "answer_generation_time", "total_response_time"):
        assert isinstance(body[field], int | float) and body[field] >= 0, (field, body)


def assert_answered(reply: Reply, question: str) -> None:
    assert reply.status == 200, (reply.status, reply.body)
    body = reply.json()
    assert_original_fields(body)
    category, answerer = EXPECTED[question]
    assert (body["question_classification"], body["answerer_LLM"]) == (category, answerer), body


def readme_line(run: LocalRun, line: str) -> str:
    """A README curl line aimed at this run instead of the README's port and key."""
    assert README_BASE_URL in line and README_API_KEY in line, line
    return line.replace(README_BASE_URL, run.base_url).replace(README_API_KEY, run.api_key)


def concurrently(count: int, send: Callable[[int], Reply]) -> tuple[list[Reply], float]:
    """``send(i)`` for i in range(count), all released at once; the replies and the seconds
    from the release to the last reply."""
    barrier = threading.Barrier(count + 1, timeout=30)

    def task(i: int) -> Reply:
        barrier.wait()
        return send(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(task, i) for i in range(count)]
        barrier.wait()
        started = time.monotonic()
        replies = [future.result(timeout=REQUEST_TIMEOUT * 2) for future in futures]
    return replies, time.monotonic() - started


# --- start-up -------------------------------------------------------------------------------


def test_starts_offline_and_prints_the_ready_line(local_run: LocalRun) -> None:
    ready = [line for line in local_run.lines if line.startswith("ready:")]
    assert ready == [f"ready: serving on {local_run.base_url} (Ctrl-C to stop)"], local_run.output
    assert any(line.startswith("Bedrock: local stand-in") for line in local_run.lines)
    assert f"API key: {API_KEY}  (--api-key;" in local_run.output
    for name in STRATEGIES:
        assert f"POST {local_run.base_url}/{name}/ask" in local_run.output


def test_every_function_runs_with_its_synthesized_role(local_run: LocalRun) -> None:
    """IAM is enforced: the roles come from the CDK templates (router, streaming and feedback
    functions, 3 stacks)."""
    roles = 3 * len(STRATEGIES)  # a router, a streaming and a feedback function per stack
    line = f"IAM: each function runs with its synthesized role ({roles} roles"
    assert line in local_run.output, (
        local_run.output
    )


def test_the_printed_feedback_command_lists_feedback(local_run: LocalRun) -> None:
    """The line the run prints reads its feedback table as printed (the operator's key)."""
    line = next(x for x in local_run.lines if x.strip().startswith("read it:"))
    command = line.split("read it:", 1)[1].strip()
    env_part, _, rest = command.partition(" .venv/bin/python ")
    env = {**os.environ, **dict(pair.split("=", 1) for pair in env_part.split())}
    args = [sys.executable, *shlex.split(rest)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    assert "Unable to locate credentials" not in done.stderr


def test_banner_prints_curl_lines_of_the_routes_files_own_prompts(local_run: LocalRun) -> None:
    printed = [line.strip() for line in local_run.lines if line.strip().startswith("curl ")]
    examples = banner_examples(load_routes(), list(STRATEGIES))
    expected = [curl_line(local_run.base_url, API_KEY, r, q) for r, q in examples]
    assert printed == expected, local_run.output


# --- the README's curl lines ------------------------------------------------------------------


@pytest.mark.parametrize("line", README_CURLS, ids=["ww2-semantic", "quadratic-llm-assisted"])
def test_readme_curl_line_answers(local_run: LocalRun, line: str) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("the curl binary is not installed: the README's curl lines cannot be run")
    argv = shlex.split(readme_line(local_run, line))
    question = json.loads(argv[argv.index("-d") + 1])["question"]
    # Only observes the status; the request is the README's, byte for byte.
    argv += ["--write-out", "\n%{http_code}"]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=REQUEST_TIMEOUT, env=loopback_env()
    )
    assert done.returncode == 0, (done.returncode, done.stderr)
    body, _, status = done.stdout.rpartition("\n")
    assert_answered(Reply(int(status), body.encode(), Message()), question)


# --- every router, with a Python client -------------------------------------------------------


@pytest.mark.parametrize("question", list(EXPECTED), ids=["ww2", "quadratic"])
@pytest.mark.parametrize("router", list(STRATEGIES))
def test_every_router_routes_the_blog_questions(
    local_run: LocalRun, router: str, question: str
) -> None:
    reply = ask(local_run, router, {"question": question})
    assert_answered(reply, question)
    assert reply.headers.get("x-amzn-RequestId")
    strategy, body = STRATEGIES[router], reply.json()
    if not strategy.uses_embeddings:  # only the classifier LLM can have classified it
        assert body["classifier_LLM"] == CONFIG.classifier.model_id, body
    if not strategy.uses_classifier_llm:  # only the embeddings can have
        assert body["embedding_LLM"] == CONFIG.embedding.model_id, body


@pytest.mark.parametrize("question", list(EXPECTED), ids=["ww2", "quadratic"])
def test_cost_matches_the_cost_calculators_unit_prices(local_run: LocalRun, question: str) -> None:
    """usage.cost_usd of the blog's two questions, priced again with the calculator's table."""
    from costs.prices import price_key, routes_prices

    prices = routes_prices()
    # no-cache: an answer the models give now, whatever the earlier tests cached.
    reply = ask(local_run, "llm-assisted", {"question": question},
                extra_headers={"Cache-Control": "no-cache"})
    usage = reply.json()["usage"]
    calls = [*usage["classification"], usage["answer"]]
    total = Decimal(0)
    for call in calls:
        price = prices[price_key(prices, call["model_id"])]
        expected = (
            call["input_tokens"] * price["input_per_1k"]
            + call["output_tokens"] * price["output_per_1k"]
        ) / 1000
        assert Decimal(str(call["cost_usd"])).quantize(Decimal("1e-9")) == expected.quantize(
            Decimal("1e-9")
        )
        total += expected
    assert usage["cost_usd"]["total"] == pytest.approx(float(total), abs=1e-9)
    # At the blog's scale (1,500,000 questions a month) it still agrees to the cent.
    scaled = Decimal(str(usage["cost_usd"]["total"])) * 1_500_000
    assert scaled.quantize(Decimal("0.01")) == (total * 1_500_000).quantize(Decimal("0.01"))


def test_the_response_cache_serves_repeats_and_paraphrases_locally(local_run: LocalRun) -> None:
    assert "Cache: history, math in DynamoDB by moto at http://127.0.0.1:" in local_run.output
    question = "When did the Thirty Years' War end?"  # asked by no other test
    first = ask(local_run, "semantic", {"question": question}).json()
    assert first["routing"]["cache"] == "miss", first
    second = ask(local_run, "hybrid", {"question": question}).json()  # another router, same table
    assert second["routing"]["cache"] == "hit", second
    assert second["usage"]["answer"] is None and second["usage"]["cost_usd"]["answer"] == 0.0
    assert second["answer"] == first["answer"]
    paraphrase = "In what year did the Thirty Years' War end?"
    body = ask(local_run, "semantic", {"question": paraphrase}).json()
    assert body["routing"]["cache"] == "semantic_hit", body


def test_off_topic_question_is_declined(local_run: LocalRun) -> None:
    reply = ask(local_run, "semantic", {"question": OFF_TOPIC_QUESTION})
    assert reply.status == 200, (reply.status, reply.body)
    body = reply.json()
    assert_original_fields(body)
    assert body["question_classification"] == "out_of_scope", body
    assert body["answerer_LLM"] is None, body


def test_feedback_only_for_the_callers_real_answers(local_run: LocalRun) -> None:
    """The local run signs each answer's feedback_token with a secret it created in moto's
    Secrets Manager; its feedback endpoint accepts that token from the same key, and nothing
    forged (the local API passes the key's id as API Gateway does)."""
    reply = ask(local_run, "llm-assisted", {"question": WW2_QUESTION})
    assert reply.status == 200, (reply.status, reply.body)
    answer = reply.json()
    token = answer["feedback_token"]
    feedback_path = "/llm-assisted/feedback"
    good = ask(local_run, "llm-assisted", {"feedback_token": token, "helpful": True},
               path=feedback_path)
    assert (good.status, good.json()["request_id"]) == (200, answer["request_id"])
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    forged = ask(local_run, "llm-assisted",
                 {"feedback_token": tampered, "helpful": True}, path=feedback_path)
    assert (forged.status, forged.json()["code"]) == (403, "invalid_feedback_token")


def stream_events(reply: Reply) -> list[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs of a POST /<router>/ask/stream reply read to its end."""
    assert reply.status == 200, (reply.status, reply.body)
    events = []
    for block in reply.body.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_the_stream_shares_the_cache_conversations_and_feedback_of_ask(
    local_run: LocalRun,
) -> None:
    """/ask/stream, on the streaming function's role, reads /ask's cache, continues the
    conversation /ask keeps and signs a token /feedback accepts: the same tables and secret."""
    question = "When did the Hundred Years' War end?"  # asked by no other test
    first = ask(local_run, "semantic", {"question": question}).json()
    assert first["routing"]["cache"] == "miss" and first["conversation_id"], first
    stream_path = "/semantic/ask/stream"
    events = stream_events(ask(local_run, "semantic", {"question": question}, path=stream_path))
    assert [name for name, _ in events] == ["routing", "delta", "done"], events
    assert events[0][1]["cache"] == "hit" and events[1][1]["text"] == first["answer"]
    done = events[-1][1]
    feedback = ask(local_run, "semantic", {"feedback_token": done["feedback_token"],
                                           "helpful": True}, path="/semantic/feedback")
    assert (feedback.status, feedback.json()["request_id"]) == (200, done["request_id"])
    follow_up = {"question": "Why did it last so long?",
                 "conversation_id": first["conversation_id"]}
    events = stream_events(ask(local_run, "semantic", follow_up, path=stream_path))
    assert events[-1][0] == "done", events
    assert events[-1][1]["conversation_id"] == first["conversation_id"]
    assert events[0][1]["conversation"]["affinity"] == "kept"


# --- API Gateway's errors ---------------------------------------------------------------------


@pytest.mark.parametrize("key", ["not-the-key", None], ids=["wrong-key", "no-key"])
def test_wrong_or_missing_key_is_forbidden(local_run: LocalRun, key: str | None) -> None:
    reply = ask(local_run, "semantic", {"question": WW2_QUESTION}, key=key)
    assert (reply.status, reply.json()) == (403, FORBIDDEN)


@pytest.mark.parametrize(
    "body",
    [{"category": "history"}, b"What year did World War II end?"],
    ids=["no-question", "not-json"],
)
def test_body_outside_the_request_model_is_a_400(local_run: LocalRun, body: Any) -> None:
    reply = ask(local_run, "semantic", body)
    assert (reply.status, reply.json()) == (400, INVALID_BODY)


@pytest.mark.parametrize("router", list(STRATEGIES))
def test_unknown_static_category_is_a_400(local_run: LocalRun, router: str) -> None:
    reply = ask(local_run, router, {"question": WW2_QUESTION, "category": "art"})
    assert reply.status == 400, (reply.status, reply.body)
    body = reply.json()
    assert body.get("error"), body
    assert sorted(body["valid_categories"]) == sorted(CONFIG.category_names), body


def test_health_needs_no_key(local_run: LocalRun) -> None:
    reply = http(f"{local_run.base_url}/health")
    assert reply.status == 200
    body = reply.json()
    assert body["status"] == "ok"
    expected = [
        f"/{name}/{route}" for name in STRATEGIES for route in ("ask", "ask/stream", "feedback")
    ]
    assert sorted(body["routers"]) == sorted(expected)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/unknown/ask"), ("GET", "/nothing-here"), ("GET", "/semantic/ask")],
    ids=["unknown-router", "unknown-path", "wrong-method"],
)
def test_undefined_route_is_missing_authentication_token(
    local_run: LocalRun, method: str, path: str
) -> None:
    data = json.dumps({"question": WW2_QUESTION}).encode() if method == "POST" else None
    headers = {"x-api-key": API_KEY, "Content-Type": "application/json"}
    reply = http(f"{local_run.base_url}{path}", method, data, headers)
    assert (reply.status, reply.json()) == (403, MISSING_TOKEN)


# --- load: these empty token buckets, so they come last ---------------------------------------


def test_fifty_concurrent_requests_are_answered_or_throttled(local_run: LocalRun) -> None:
    questions = list(EXPECTED)
    replies, _ = concurrently(
        50, lambda i: ask(local_run, "semantic", {"question": questions[i % 2]})
    )
    statuses = sorted({reply.status for reply in replies})
    assert set(statuses) <= {200, 429}, statuses
    answered = 0
    for i, reply in enumerate(replies):
        if reply.status == 200:
            assert_answered(reply, questions[i % 2])
            answered += 1
        else:
            assert reply.json() == TOO_MANY_REQUESTS
    assert answered >= 1


def test_more_requests_than_the_burst_are_throttled(local_run: LocalRun) -> None:
    router, count = "hybrid", 2 * THROTTLE_BURST + 10
    replies, seconds = concurrently(
        count, lambda _i: ask(local_run, router, {"question": WW2_QUESTION})
    )
    answered = [reply for reply in replies if reply.status == 200]
    throttled = [reply for reply in replies if reply.status == 429]
    assert len(answered) + len(throttled) == count, sorted(reply.status for reply in replies)
    assert throttled, f"no 429 among {count} simultaneous requests (burst {THROTTLE_BURST})"
    for reply in throttled:
        assert reply.json() == TOO_MANY_REQUESTS
        assert reply.headers.get("x-amzn-ErrorType") == "TooManyRequestsException"
    # A full bucket plus what it can refill while the requests were in flight, no more.
    assert 1 <= len(answered) <= THROTTLE_BURST + THROTTLE_RATE * seconds + 1

    # The bucket refills at the rate: the router answers again within a few refill periods.
    deadline = time.monotonic() + 5 + 5 / THROTTLE_RATE
    while (reply := ask(local_run, router, {"question": WW2_QUESTION})).status == 429:
        assert time.monotonic() < deadline, "the token bucket never refilled"
        time.sleep(1 / THROTTLE_RATE)
    assert_answered(reply, WW2_QUESTION)


# --- shutdown: last, it stops the module's server ---------------------------------------------


def test_ctrl_c_stops_cleanly_and_exits_0(local_run: LocalRun) -> None:
    assert_stops_cleanly(local_run)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", local_run.port), 1):
        pass  # the port is released
