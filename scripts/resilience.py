"""Watch the routers keep answering when models fail: the README's resilience table, and a soak.

    python scripts/resilience.py table [--integration-timeout S] [--format markdown|text]
    python scripts/resilience.py soak  [--requests 1000] [--failure-rate 0.3] [--concurrency 8]

Both run offline against the Bedrock stand-in, with the shipped routers and the routes file
(``--routes FILE``, else ``ROUTES_FILE``, else routes.json). The scenarios come from it: the
failover shown is that of the *focus* category (:func:`focus_category`: the most answer targets,
the dearest of those), asked its own first reference prompts; the classifier and embedding
scenarios ask another category's first reference prompt.

``table`` injects one failure per scenario (throttling, 5xx, timeouts, a hung model, no access,
an invalid request, a classifier or embedding model down, everything down) and prints what the
caller gets and which model answered: the README's Resilience table is this command's output.
``--integration-timeout`` shortens API Gateway's timeout (and so the request budget and the
per-attempt caps, in proportion) to watch the hung-model scenarios without waiting 29 s.

``soak`` sends requests through the local API (real HTTP, the API Gateway emulation) with the
focus category's primary target failing ``--failure-rate`` of the time, the error rotating
through throttling, 503, 500 and model timeouts, after a baseline run with no faults; it reports
how many requests got a 200 from a configured target and the latency the failover adds (p50, p99).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import http.client
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cli
from apigw_events import LocalLambdaContext, proxy_event
from llm_router.config import ConfigError, RoutesConfig, load_routes, parse_routes
from routes_file import add_routes_argument, use_routes_file
from text_table import table as text_table

SOAK_ERRORS = (
    "ThrottlingException",
    "ServiceUnavailableException",
    "InternalServerException",
    "ModelTimeoutException",
)
HUNG_SECONDS = 40


@dataclass(frozen=True)
class Scenario:
    failure: str
    router: str
    question: str
    inject: Callable[[Any, RoutesConfig], None]
    repeat: int = 1  # requests sent; the table shows the last (the breaker scenario needs several)


def _fault(targets: Callable[[RoutesConfig], list[str]], error: str) -> Callable[..., None]:
    def inject(standin: Any, config: RoutesConfig) -> None:
        for model in targets(config):
            standin.inject_fault(model, error)

    return inject


def _hang(targets: Callable[[RoutesConfig], list[str]]) -> Callable[..., None]:
    def inject(standin: Any, config: RoutesConfig) -> None:
        for model in targets(config):
            standin.set_delay(model, HUNG_SECONDS)

    return inject


def focus_category(config: RoutesConfig) -> str:
    """The category whose failover the scenarios show: the one with the most answer targets
    (the most failover to watch), the dearest of those (``RoutesConfig.dearest_category``)."""
    most = max(len(config.plan_for(c).model_ids()) for c in config.categories)
    candidates = [c for c in config.categories if len(config.plan_for(c).model_ids()) == most]
    dearest = config.dearest_category()
    return dearest if dearest in candidates else candidates[0]


def other_category(config: RoutesConfig) -> str:
    """A category other than the focus one (the focus itself when it is the only one)."""
    focus = focus_category(config)
    return next((c for c in config.categories if c != focus), focus)


def focus_questions(config: RoutesConfig, count: int = 4) -> tuple[str, ...]:
    """The focus category's first reference prompts: questions the routers send to it."""
    prompts = config.categories[focus_category(config)].reference_prompts[:count]
    if not prompts:
        raise ConfigError(f"category {focus_category(config)!r} has no reference prompts")
    return tuple(prompts)


def other_question(config: RoutesConfig) -> str:
    prompts = config.categories[other_category(config)].reference_prompts
    return prompts[0] if prompts else focus_questions(config)[0]


def _focus_plan(config: RoutesConfig) -> list[str]:
    return list(config.plan_for(focus_category(config)).attempt_order())


def _primary(config: RoutesConfig) -> list[str]:
    return [config.answerer_for(focus_category(config))]


def _primary_and_next(config: RoutesConfig) -> list[str]:
    return _focus_plan(config)[:2]


def _classifier(config: RoutesConfig) -> list[str]:
    return [config.classifier.model_id]


def _embedder(config: RoutesConfig) -> list[str]:
    return [config.embedding.model_id]


def _classifier_and_answers(config: RoutesConfig) -> list[str]:
    other = config.plan_for(other_category(config)).model_ids()
    return [config.classifier.model_id, *_focus_plan(config), *other]


def _nothing(standin: Any, config: RoutesConfig) -> None:
    return None


Targets = Callable[[RoutesConfig], list[str]]
HANG = "hang"  # a row's failure: the targets answer after HUNG_SECONDS instead of failing
DOWN = "ServiceUnavailableException"

# The focus question under the semantic router: (row, targets, failure[, requests sent]).
FOCUS_ROWS: tuple[tuple[str, Targets, str] | tuple[str, Targets, str, int], ...] = (
    ("primary answer target throttled", _primary, "ThrottlingException"),
    ("primary answer target 500", _primary, "InternalServerException"),
    ("primary answer target model timeout", _primary, "ModelTimeoutException"),
    ("primary answer target hung", _primary, HANG),
    ("primary answer target: no model access", _primary, "AccessDeniedException"),
    ("primary and its inference profile throttled", _primary_and_next, "ThrottlingException"),
    ("primary keeps failing: breaker opens", _primary, DOWN, 6),
    ("request rejected as invalid", _primary, "ValidationException"),
    ("every answer target throttled", _focus_plan, "ThrottlingException"),
    ("every answer target hung", _focus_plan, HANG),
)
# Another category's question, its targets down: (row, strategy, targets).
OTHER_ROWS: tuple[tuple[str, str, Targets], ...] = (
    ("classifier LLM down", "llm-assisted", _classifier),
    ("embedding model down", "semantic", _embedder),
    ("embedding model down", "hybrid", _embedder),
    ("classifier and every answer target down", "llm-assisted", _classifier_and_answers),
)


def _inject(targets: Targets, failure: str) -> Callable[..., None]:
    return _hang(targets) if failure == HANG else _fault(targets, failure)


def scenarios(config: RoutesConfig) -> tuple[Scenario, ...]:
    """The table's rows for this configuration (see the module docstring)."""
    focus, other = focus_questions(config)[0], other_question(config)
    return (
        Scenario("none", "semantic", focus, _nothing),
        *(
            Scenario(name, "semantic", focus, _inject(targets, failure), *repeat)
            for name, targets, failure, *repeat in FOCUS_ROWS
        ),
        *(
            Scenario(name, strategy, other, _fault(targets, DOWN))
            for name, strategy, targets in OTHER_ROWS
        ),
    )


def scaled(config: RoutesConfig, integration_timeout: float | None) -> RoutesConfig:
    """The config with API Gateway's timeout (and the caps within it) scaled down."""
    if integration_timeout is None:
        return config
    raw = copy.deepcopy(dict(config.raw))
    factor = integration_timeout / config.api.integration_timeout_seconds
    raw["api"]["integration_timeout_seconds"] = integration_timeout
    resilience = raw.setdefault("resilience", {})
    for key in ("classification_timeout_seconds", "answer_attempt_timeout_seconds",
                "response_margin_seconds"):
        current = getattr(config.resilience, key)
        resilience[key] = round(current * factor, 3)
    return parse_routes(raw, preset=config.preset, source_path=config.source_path)


@contextlib.contextmanager
def offline_routers(config: RoutesConfig) -> Iterator[tuple[Any, Callable[[str], Any]]]:
    """The stand-in, and a factory of fresh routers (new breakers) over it."""
    from backends import prepare_index, standin_backend
    from llm_router.pipeline.factory import build_service

    with contextlib.ExitStack() as stack:
        backend = standin_backend(stack, None)
        index_dir = prepare_index(config, backend, lambda line: print(line, file=sys.stderr))

        def fresh(strategy: str) -> Any:
            return build_service(
                strategy, config, backend.client, index_dir, backend.embedding_source
            )

        yield backend.standin, fresh


def run_table(config: RoutesConfig) -> list[dict[str, Any]]:
    from llm_router.edge.handler import RouterHandler

    rows = []
    table = scenarios(config)
    with offline_routers(config) as (standin, fresh):
        for strategy in {s.router for s in table}:  # warm the stand-in's models up first
            fresh(strategy).ask(other_question(config))
        for scenario in table:
            standin.reset()
            handler = RouterHandler(
                service_factory=lambda s=scenario: fresh(s.router), eager=True
            )
            scenario.inject(standin, config)
            for _ in range(scenario.repeat):
                started = time.monotonic()
                response = handler(
                    proxy_event(json.dumps({"question": scenario.question})),
                    LocalLambdaContext(timeout_seconds=config.lambda_settings.timeout_seconds),
                )
                seconds = time.monotonic() - started
            standin.reset()
            body = json.loads(response["body"])
            rows.append(describe(scenario, response, body, seconds))
    return rows


def describe(
    scenario: Scenario, response: dict[str, Any], body: dict[str, Any], seconds: float
) -> dict[str, Any]:
    status = response["statusCode"]
    routing = body.get("routing", {})
    notes = []
    if routing.get("degraded"):
        notes.append(f"degraded ({routing['degraded']}), decided by {routing.get('decided_by')}")
    if routing.get("fallback_used"):
        notes.append("fallback used")
    skipped = [t["model_id"] for t in routing.get("targets", []) if t["result"] == "skipped"]
    if skipped:
        notes.append(f"skipped by open breaker: {', '.join(skipped)}")
    if status != 200:
        retry = response["headers"].get("Retry-After")
        notes.append(f"{body.get('code')}" + (f", Retry-After {retry} s" if retry else ""))
    return {
        "failure": scenario.failure,
        "router": scenario.router,
        "status": status,
        "answered_by": body.get("answerer_LLM") or "-",
        "routing": "; ".join(notes) or "-",
        "seconds": round(seconds, 2),
    }


def print_table(rows: list[dict[str, Any]], fmt: str) -> None:
    headers = ["failure", "router", "caller gets", "answered by", "what the response says", "s"]
    body = [[r["failure"], r["router"], str(r["status"]), r["answered_by"], r["routing"],
             f"{r['seconds']:.2f}"] for r in rows]
    if fmt == "markdown":
        print("| " + " | ".join(headers) + " |")
        print("|" + "---|" * len(headers))
        for row in body:
            print("| " + " | ".join(row) + " |")
    else:
        print("\n".join(text_table(headers, body, left=5)))


# -- soak ----------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def soak(
    config: RoutesConfig,
    requests: int,
    failure_rate: float,
    concurrency: int,
    baseline_requests: int | None = None,
) -> dict[str, Any]:
    """Baseline, then the faulted run, through the local API; figures for both."""
    from llm_router.edge.handler import RouterHandler
    from local_api import ApiSettings, LocalApiServer, LocalGateway

    key = "soak-key-0123456789abcdef"
    raw = copy.deepcopy(dict(config.raw))
    raw["api"].update(throttle_rate_limit=100000, throttle_burst_limit=100000,
                      quota_requests_per_day=10**9)
    config = parse_routes(raw, preset=config.preset, source_path=config.source_path)
    focus = focus_category(config)
    primary = config.answerer_for(focus)
    configured = set(config.plan_for(focus).model_ids())
    questions = focus_questions(config)
    with offline_routers(config) as (standin, fresh):
        handler = RouterHandler(service_factory=lambda: fresh("semantic"), eager=True)
        gateway = LocalGateway(ApiSettings.from_config(config, key), {"semantic": handler})
        with LocalApiServer(gateway, request_log=lambda *_: None) as server:
            host, port = server.host, server.port
            baseline = _send_all(
                host, port, key, questions, baseline_requests or requests, concurrency
            )
            faulted: list[tuple[int, float, dict[str, Any]]] = []
            per_phase = requests // len(SOAK_ERRORS)
            for phase, error in enumerate(SOAK_ERRORS):
                standin.reset()
                standin.inject_fault(primary, error, probability=failure_rate)
                count = per_phase if phase < len(SOAK_ERRORS) - 1 else requests - len(faulted)
                faulted.extend(_send_all(host, port, key, questions, count, concurrency))
            standin.reset()
    ok = [r for r in faulted if r[0] == 200 and r[2].get("answerer_LLM") in configured]
    by_fallback = [r for r in ok if r[2]["routing"].get("fallback_used")]
    base_times = [r[1] for r in baseline]
    fault_times = [r[1] for r in faulted]
    return {
        "requests": len(faulted),
        "answered_200_by_configured_target": len(ok),
        "success_rate": len(ok) / len(faulted),
        "answered_by_fallback": len(by_fallback),
        "statuses": {str(s): sum(1 for r in faulted if r[0] == s) for s in {r[0] for r in faulted}},
        "baseline_ms": {"p50": percentile(base_times, 0.5) * 1000,
                        "p99": percentile(base_times, 0.99) * 1000},
        "faulted_ms": {"p50": percentile(fault_times, 0.5) * 1000,
                       "p99": percentile(fault_times, 0.99) * 1000},
        "fallback_ms": {
            "p50": percentile([r[1] for r in by_fallback], 0.5) * 1000 if by_fallback else None,
            "p99": percentile([r[1] for r in by_fallback], 0.99) * 1000 if by_fallback else None,
        },
        "mean_ms": {"baseline": statistics.fmean(base_times) * 1000,
                    "faulted": statistics.fmean(fault_times) * 1000},
    }


def _send_all(host: str, port: int, key: str, questions: tuple[str, ...], count: int,
              concurrency: int) -> list[tuple[int, float, dict[str, Any]]]:
    def one(index: int) -> tuple[int, float, dict[str, Any]]:
        body = json.dumps({"question": questions[index % len(questions)]})
        connection = http.client.HTTPConnection(host, port, timeout=60)
        started = time.monotonic()
        try:
            connection.request("POST", "/semantic/ask", body,
                               {"Content-Type": "application/json", "x-api-key": key})
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        return response.status, time.monotonic() - started, json.loads(payload)

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, range(count)))


def quiet_handlers() -> None:
    """No EMF blobs or per-call warnings on the terminal: the table is the output."""
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    table = sub.add_parser("table", help="one request per failure scenario")
    table.add_argument("--integration-timeout", type=float,
                       help="seconds (default: routes.json api.integration_timeout_seconds)")
    table.add_argument("--format", choices=("markdown", "text", "json"), default="text")
    soak_parser = sub.add_parser("soak", help="many requests with the primary target failing")
    soak_parser.add_argument("--requests", type=int, default=1000)
    soak_parser.add_argument("--failure-rate", type=float, default=0.3)
    soak_parser.add_argument("--concurrency", type=int, default=8)
    soak_parser.add_argument("--baseline-requests", type=int,
                             help="requests of the no-fault run (default: --requests)")
    for each in (table, soak_parser):
        add_routes_argument(each)
    args = parser.parse_args(argv)
    quiet_handlers()
    try:
        use_routes_file(args.routes)
        config = load_routes()
    except ConfigError as exc:
        return cli.error(exc)
    if args.command == "table":
        rows = run_table(scaled(config, args.integration_timeout))
        if args.format == "json":
            print(json.dumps(rows, indent=2))
        else:
            print_table(rows, args.format)
        return 0
    report = soak(config, args.requests, args.failure_rate, args.concurrency,
                  args.baseline_requests)
    print(json.dumps(report, indent=2))
    return 0 if report["success_rate"] >= 0.999 else 1


if __name__ == "__main__":
    cli.run(main)
