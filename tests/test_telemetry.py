"""Telemetry: one EMF blob per request with the documented metrics and dimensions, one audit line
without user text unless asked, and tracing that costs nothing when off.

The blobs and log lines are what Powertools prints to stdout, parsed back as CloudWatch would.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools import Logger, Metrics
from conftest import HAIKU, SONNET, TITAN_EMBED, TITAN_TEXT, invoke, lambda_env, run_fresh
from llm_router.config import ConfigError, RoutesConfig
from llm_router.observability import metric_catalog as mc
from llm_router.observability import telemetry, tracing
from llm_router.observability.telemetry import (
    AUDIT_COST_QUERY,
    parse_telemetry,
    publish,
    telemetry_settings,
)

from layers import REPO_ROOT

NAMESPACE = "TelemetryTest"
SERVICE = "hybrid-router"


def answered_record(**overrides: Any) -> dict[str, Any]:
    """A hybrid request that escalated, failed over from Sonnet to Haiku and answered."""
    record: dict[str, Any] = {
        "request_id": "req-1",
        "tier": "standard",
        "strategy": "hybrid",
        "status": 200,
        "outcome": "answered",
        "degraded": None,
        "fallback_used": True,
        "category": "math",
        "decided_by": "classifier_llm",
        "escalated": True,
        "answer_target": HAIKU,
        "targets_tried": [
            {"model_id": TITAN_EMBED, "stage": "embedding", "result": "ok",
             "error_code": None, "seconds": 0.02},
            {"model_id": TITAN_TEXT, "stage": "classification", "result": "ok",
             "error_code": None, "seconds": 0.3},
            {"model_id": SONNET, "stage": "answer", "result": "failed",
             "error_code": "ThrottlingException", "seconds": 0.1},
            {"model_id": SONNET, "stage": "answer", "result": "skipped",
             "error_code": "CircuitOpen", "seconds": 0.0},
            {"model_id": HAIKU, "stage": "answer", "result": "ok",
             "error_code": None, "seconds": 1.2},
        ],
        "breaker_opened": [SONNET],
        "classification_seconds": 0.321,
        "answer_seconds": 1.5,
        "total_seconds": 1.83,
        "usage": [
            {"model_id": TITAN_EMBED, "stage": "embedding", "input_tokens": 9,
             "output_tokens": 0, "cost_usd": 0.00000018},
            {"model_id": TITAN_TEXT, "stage": "classification", "input_tokens": 120,
             "output_tokens": 2, "cost_usd": 0.0000252},
            {"model_id": HAIKU, "stage": "answer", "input_tokens": 70,
             "output_tokens": 130, "cost_usd": 0.00018},
        ],
        "cost_usd": 0.00020538,
        "budget_level": "ok",
        "scores": {"math": 0.41, "history": 0.2},
        "question": "What is 2 + 2?",
        "answer": "4",
    }
    record.update(overrides)
    return record


@pytest.fixture
def emit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Publish records as the handler does, one invocation each: (EMF blobs, log lines)."""
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

    def run(*records: dict[str, Any], **options: Any) -> tuple[list[dict], list[dict]]:
        # The logger's stream is sys.stdout when it is made: capsys's only during the test call.
        # Powertools reuses a logger by service name with its first stream, hence a fresh name.
        # INFO whatever POWERTOOLS_LOG_LEVEL another test's script left in the environment.
        logger = Logger(service=f"{SERVICE}-{uuid.uuid4().hex}", level="INFO")
        capsys.readouterr()
        blobs: list[dict[str, Any]] = []
        lines: list[dict[str, Any]] = []
        for record in records:

            @metrics.log_metrics
            def handler(event: Any, context: Any, record: dict[str, Any] = record) -> None:
                publish(record, metrics, logger, **options)

            handler({}, None)
            out = capsys.readouterr().out
            printed = [json.loads(line) for line in out.splitlines() if line]
            request_blobs = [p for p in printed if "_aws" in p]
            assert len(request_blobs) == 1, "exactly one EMF blob per request"
            blobs += request_blobs
            lines += [p for p in printed if "_aws" not in p]
        return blobs, lines

    return run


def metric_values(blob: dict[str, Any]) -> dict[str, float]:
    """Name -> value; Powertools writes a list of values, which must hold one per request."""
    [directive] = blob["_aws"]["CloudWatchMetrics"]
    values = {m["Name"]: blob[m["Name"]] for m in directive["Metrics"]}
    assert all(len(v) == 1 for v in values.values()), values
    return {name: v[0] for name, v in values.items()}


def units(blob: dict[str, Any]) -> dict[str, str]:
    [directive] = blob["_aws"]["CloudWatchMetrics"]
    return {m["Name"]: m["Unit"] for m in directive["Metrics"]}


# -- EMF ------------------------------------------------------------------------------------------


def test_answered_request_is_one_blob_with_documented_metrics(emit: Callable[..., Any]) -> None:
    [blob], _ = emit(answered_record())
    [directive] = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE
    assert directive["Dimensions"] == [
        ["Strategy", "service"], ["Strategy", "Category"], ["Strategy", "AnswerTarget"],
    ]
    assert (blob["Strategy"], blob["service"]) == ("hybrid", SERVICE)
    assert (blob["Category"], blob["AnswerTarget"]) == ("math", HAIKU)
    values = metric_values(blob)
    assert set(values) <= set(mc.metric_names())
    assert units(blob) == {name: spec.unit for spec in mc.METRICS for name in [spec.name]
                           if name in values}
    assert values == {
        "Requests": 1, "Answered": 1, "FallbackUsed": 1, "Escalated": 1,
        "BedrockFailures": 1, "BedrockThrottles": 1, "BreakerOpenings": 1, "BreakerSkips": 1,
        "ClassificationLatency": 321, "AnswerLatency": 1500, "TotalLatency": 1830,
        "EmbeddingInputTokens": 9, "ClassifierInputTokens": 120, "ClassifierOutputTokens": 2,
        "AnswerInputTokens": 70, "AnswerOutputTokens": 130,
        "CostUSD": 0.00020538,
        "ClassificationCostUSD": pytest.approx(0.00000018 + 0.0000252),
        "AnswerCostUSD": 0.00018,
    }


def test_outcomes_and_statuses_each_count_once(emit: Callable[..., Any]) -> None:
    declined = answered_record(
        outcome="declined", category="out_of_scope", answer_target=None, fallback_used=False,
        escalated=False, targets_tried=[], breaker_opened=[], answer_seconds=0.0,
        usage=[{"model_id": TITAN_EMBED, "stage": "embedding", "input_tokens": 7,
                "output_tokens": 0, "cost_usd": 0.00000014}], cost_usd=0.00000014)
    deadline = answered_record(status=504, outcome="deadline_exceeded", answer_target=None,
                               fallback_used=False, usage=[], cost_usd=None)
    bad = {"request_id": "r", "strategy": "hybrid", "status": 400, "outcome": "bad_request",
           "category": None, "answer_target": None, "usage": [], "cost_usd": 0.0}
    over = answered_record(status=429, outcome="over_budget", budget_level="hard",
                           answer_target=None, category=None, usage=[], cost_usd=None,
                           fallback_used=False, escalated=False, targets_tried=[],
                           breaker_opened=[])
    soft = answered_record(budget_level="soft", degraded="classifier failed",
                           fallback_used=False)
    blobs, _ = emit(declined, deadline, bad, over, soft)
    got = [metric_values(b) for b in blobs]
    assert got[0]["Declined"] == 1 and "Answered" not in got[0] and "AnswerLatency" not in got[0]
    assert blobs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["Strategy", "service"], ["Strategy", "Category"]]
    assert blobs[0]["Category"] == "out_of_scope"
    assert got[1]["Status5xx"] == 1 and got[1]["Status504"] == 1 and "Status4xx" not in got[1]
    assert "CostUSD" not in got[1]  # nothing billed: no cost published
    assert got[2] == {"Requests": 1, "Status4xx": 1}
    assert blobs[2]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Strategy", "service"]]
    assert got[3]["OverBudget"] == 1 and got[3]["Status4xx"] == 1
    assert got[4]["BudgetSoft"] == 1 and got[4]["Degraded"] == 1 and got[4]["Answered"] == 1


def test_embedding_calls_listed_under_classification_count_as_embedding(
    emit: Callable[..., Any],
) -> None:
    """llm_router.governance.audit lists every classification-time call as stage
    "classification"."""
    record = answered_record()
    record["usage"] = [{**call, "stage": "classification"} if call["stage"] == "embedding"
                       else call for call in record["usage"]]
    [blob], _ = emit(record)
    values = metric_values(blob)
    assert (values["EmbeddingInputTokens"], values["ClassifierInputTokens"]) == (9, 120)


def test_unknown_price_is_never_published_as_zero(emit: Callable[..., Any]) -> None:
    usage = answered_record()["usage"]
    usage[2] = {**usage[2], "cost_usd": None}
    [blob], [line] = emit(answered_record(usage=usage, cost_usd=None))
    values = metric_values(blob)
    assert values["UnpricedCalls"] == 1
    assert "CostUSD" not in values and "AnswerCostUSD" not in values
    assert values["ClassificationCostUSD"] == pytest.approx(0.00000018 + 0.0000252)
    assert line["audit"]["answer_cost_usd"] is None and line["audit"]["cost_usd"] is None


def test_tier_dimension_set_only_when_asked(emit: Callable[..., Any]) -> None:
    blobs, _ = emit(answered_record(tier="gold"))
    assert ["Strategy", "Tier"] not in blobs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    blobs, _ = emit(answered_record(tier="gold"), by_tier=True)
    assert blobs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"][-1] == ["Strategy", "Tier"]
    assert blobs[0]["Tier"] == "gold"


# -- audit line -----------------------------------------------------------------------------------


def test_audit_line_has_no_text_by_default(emit: Callable[..., Any]) -> None:
    record = answered_record()
    _, [line] = emit(record)
    assert line["message"] == "audit" and line["level"] == "INFO"
    audit = line["audit"]
    assert "question" not in audit and "answer" not in audit
    assert record["question"] not in json.dumps(line)
    assert audit["request_id"] == "req-1" and audit["tier"] == "standard"
    assert audit["targets_tried"] == record["targets_tried"]
    assert audit["scores"] == record["scores"] and audit["cost_usd"] == record["cost_usd"]
    assert (audit["input_tokens"], audit["output_tokens"]) == (9 + 120 + 70, 0 + 2 + 130)
    assert audit["classification_cost_usd"] == pytest.approx(0.00000018 + 0.0000252)
    assert audit["answer_cost_usd"] == 0.00018
    assert audit["billed_models"] == sorted({TITAN_EMBED, TITAN_TEXT, HAIKU})


def test_audit_line_has_text_with_include_text(emit: Callable[..., Any]) -> None:
    _, [line] = emit(answered_record(), include_text=True)
    assert (line["audit"]["question"], line["audit"]["answer"]) == ("What is 2 + 2?", "4")


def test_logging_section(routes: RoutesConfig) -> None:
    assert telemetry_settings(routes).include_text is False  # the shipped default
    assert parse_telemetry({}).include_text is False
    assert parse_telemetry({"logging": {"include_text": True}}, tier_count=2) == (
        telemetry.TelemetrySettings(include_text=True, by_tier=True))
    with pytest.raises(ConfigError, match="include_text"):
        parse_telemetry({"logging": {"include_text": "yes"}})
    with pytest.raises(ConfigError, match="unknown keys"):
        parse_telemetry({"logging": {"include_txt": True}})


def test_operations_doc_has_the_cost_query_and_every_metric() -> None:
    doc = (REPO_ROOT / "docs" / "operations.md").read_text()
    assert AUDIT_COST_QUERY in doc
    for spec in mc.METRICS:
        assert f"`{spec.name}`" in doc, spec.name


# -- the real handler -----------------------------------------------------------------------------


def _handler_publishes() -> bool:
    from llm_router.edge import handler

    return "publish" in vars(handler) or "telemetry" in vars(handler)


@pytest.mark.skipif(not _handler_publishes(), reason="the handler does not call publish yet")
def test_handler_prints_one_documented_blob_per_request(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fresh_standin: Any,
) -> None:
    from llm_router.edge.handler import RouterHandler

    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.setenv("ROUTER_STRATEGY", "llm-assisted")
    monkeypatch.setenv("BEDROCK_ENDPOINT_URL", fresh_standin.url)
    from llm_router.edge.handler import logger as handler_logger

    handler = RouterHandler(eager=True)
    # The Logger writes to the stream it was created with; read its lines through a handler.
    logged = io.StringIO()
    stream = logging.StreamHandler(logged)
    stream.setFormatter(handler_logger.registered_formatter)
    handler_logger._logger.addHandler(stream)
    try:
        for body in ({"question": "What year did World War II end?"}, {"question": ""}):
            capsys.readouterr()
            logged.seek(0)
            logged.truncate()
            invoke(handler, body)
            printed = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x]
            [blob] = [p for p in printed if "_aws" in p]
            assert set(metric_values(blob)) <= set(mc.metric_names())
            assert metric_values(blob)["Requests"] == 1
            lines = [json.loads(x) for x in logged.getvalue().splitlines() if x]
            assert len([p for p in lines if p.get("message") == "audit"]) == 1
    finally:
        handler_logger._logger.removeHandler(stream)


def test_disabled_metrics_do_not_pile_up_between_requests(
    monkeypatch: pytest.MonkeyPatch, fresh_standin: Any
) -> None:
    """With metrics off (the local run, tests) Powertools' flush neither prints nor clears its
    process-wide metric set: the handler clears it, so nothing grows or leaks into later blobs."""
    from llm_router.edge.handler import RouterHandler
    from llm_router.edge.handler import metrics as handler_metrics

    monkeypatch.setenv("ROUTER_STRATEGY", "llm-assisted")
    monkeypatch.setenv("BEDROCK_ENDPOINT_URL", fresh_standin.url)
    handler = RouterHandler(eager=True)
    for body in ({"question": "What year did World War II end?"}, {"question": ""}):
        invoke(handler, body)
        assert handler_metrics.provider.metric_set == {}
        assert set(handler_metrics.provider.dimension_set) <= {"service"}


# -- tracing --------------------------------------------------------------------------------------


def test_tracing_off_imports_nothing() -> None:
    """Outside Lambda a traced block runs untraced, without importing the tracer or X-Ray."""
    code = (
        "import sys\n"
        "from llm_router.observability.tracing import subsegment\n"
        "with subsegment('classification') as span:\n"
        "    span.annotate('category', 'math')\n"
        "    assert not span.recording\n"
        "loaded = [m for m in sys.modules if m.startswith(('aws_xray_sdk', "
        "'aws_lambda_powertools.tracing'))]\n"
        "assert not loaded, loaded\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_FUNCTION_NAME"}
    env["PYTHONPATH"] = str(REPO_ROOT / "lambdas")
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_tracing_respects_disable_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "router")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert not tracing.tracing_enabled()
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    assert tracing.tracing_enabled()
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    assert not tracing.tracing_enabled()


def test_subsegments_reach_the_xray_daemon(tmp_path: Path) -> None:
    """In a Lambda-like environment the stages arrive at the X-Ray daemon (UDP on loopback)."""
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(10)
    port = daemon.getsockname()[1]
    code = (
        "from llm_router.observability.tracing import subsegment\n"
        "for stage in ('classification', 'embedding', 'search', 'answer'):\n"
        "    with subsegment(stage) as span:\n"
        "        span.annotate('stage', stage)\n"
        "        assert span.recording\n"
    )
    env = lambda_env(
        tmp_path,
        _X_AMZN_TRACE_ID="Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;"
        "Sampled=1",
        AWS_XRAY_DAEMON_ADDRESS=f"127.0.0.1:{port}",
        POWERTOOLS_SERVICE_NAME="test-router",
    )
    try:
        run_fresh(code, timeout=60, **env)
        names = set()
        while len(names) < 4:
            packet = daemon.recv(65536).decode()
            names.add(json.loads(packet.split("\n", 1)[1])["name"])
    finally:
        daemon.close()
    assert names == {"## classification", "## embedding", "## search", "## answer"}


def test_breakdowns_are_opt_in(routes: RoutesConfig, emit: Callable[..., Any]) -> None:
    """As shipped, every metric is published by the router's totals only: the Category and
    AnswerTarget dimension sets multiply the stack's custom metrics, so routes.json opts in."""
    assert telemetry_settings(routes).breakdowns == ()
    [blob], _ = emit(answered_record(), breakdowns=())
    assert blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Strategy", "service"]]
    assert "Category" not in blob and "AnswerTarget" not in blob
    [blob], _ = emit(answered_record(), breakdowns=("AnswerTarget",))
    assert blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["Strategy", "service"], ["Strategy", "AnswerTarget"]]
    both = {"metrics": {"breakdowns": ["AnswerTarget", "Category"]}}
    assert telemetry.parse_breakdowns(both) == ("Category", "AnswerTarget")
    for bad in ({"breakdowns": ["Model"]}, {"breakdowns": "Category"}, {"breakdown": []}):
        with pytest.raises(ConfigError, match="metrics"):
            telemetry.parse_breakdowns({"metrics": bad})
