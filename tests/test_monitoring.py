"""Each router stack's dashboard, alarms and optional SNS topic, read from synthesized templates.

Two synths (bundling skipped): the session's shared one of the shipped routes.json, and a variant
with other thresholds, one alarm turned off and ``-c alarmEmail=...``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import aws_cdk as cdk
import pytest
from conftest import active_routes_file
from llm_router.config import ConfigError, RoutesConfig, parse_routes
from llm_router.observability import metric_catalog as mc
from llm_router.observability.telemetry import AUDIT_COST_QUERY
from llm_router.pipeline.strategies import STRATEGIES, Strategy
from stack_synth import Synth, render_url, routes_file, shared_synth, synth

from stacks.alarm_settings import DEFAULTS, parse_alarms
from stacks.functions import METRICS_NAMESPACE
from stacks.monitoring import alarm_email_from_context

pytestmark = pytest.mark.generic  # holds for any valid routes file

EMAIL = "ops@example.com"
VARIANT_ALARMS = {
    "period_minutes": 1,
    "evaluation_periods": 2,
    "min_requests": 50,
    "server_error_rate": 0.01,
    "latency_p99_timeout_fraction": 0.5,
    "bedrock_failures": 3,
    "decline_rate": None,
    "daily_cost_usd": 2.5,
}


@pytest.fixture(scope="module")
def shipped() -> Synth:
    return shared_synth()


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    raw = json.loads(active_routes_file().read_text())
    raw["alarms"] = {"_about": "test variant", **VARIANT_ALARMS}
    raw["metrics"] = {"breakdowns": ["Category", "AnswerTarget"]}  # the opt-in dimension sets
    path = tmp_path_factory.mktemp("routes") / "routes.json"
    path.write_text(json.dumps(raw))
    with routes_file(path):
        yield synth(tmp_path_factory.mktemp("cdk-out-monitoring-variant"), alarmEmail=EMAIL)


def strategies() -> list[Strategy]:
    return list(STRATEGIES.values())


def alarms(s: Synth, strategy: Strategy) -> dict[str, dict[str, Any]]:
    """Alarm id (Monitoring<Id><hash> -> <Id>) -> properties."""
    found = {}
    for logical_id, resource in s.resources(strategy, "AWS::CloudWatch::Alarm").items():
        name = logical_id.removeprefix("Monitoring")[:-8]
        found[name] = resource["Properties"]
    return found


def render_body(value: Any) -> str:
    """The dashboard body's Fn::Join with Refs as ${Id} and GetAtts as ${Id.Attribute}."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render_body(p) for p in parts)
    return render_url(value)


def dashboard_body(s: Synth, strategy: Strategy) -> dict[str, Any]:
    _, dashboard = s.one(strategy, "AWS::CloudWatch::Dashboard")
    return json.loads(render_body(dashboard["Properties"]["DashboardBody"]))


def widget_metrics(widget: dict[str, Any]) -> list[list[Any]]:
    return [m for m in widget["properties"].get("metrics", []) if isinstance(m[0], str)]


def dims(metric: list[Any]) -> dict[str, str]:
    """The dimensions of a dashboard metric array [namespace, name, k1, v1, ..., {options}]."""
    pairs = [x for x in metric[2:] if isinstance(x, str)]
    return dict(zip(pairs[::2], pairs[1::2], strict=True))


def router_dims(strategy: Strategy) -> dict[str, str]:
    return {"Strategy": strategy.name, "service": f"{strategy.name}-router"}


def expression_metrics(alarm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}


def check_thresholds(alarm_props: dict[str, dict[str, Any]], settings: Any,
                     config: RoutesConfig, strategy: Strategy) -> None:
    period = settings.period_minutes * 60
    rate = alarm_props["ServerErrorRate"]
    assert rate["Threshold"] == settings.server_error_rate
    assert (rate["EvaluationPeriods"], rate["DatapointsToAlarm"]) == (
        settings.evaluation_periods, settings.evaluation_periods)
    [expression] = [m for m in rate["Metrics"] if "Expression" in m]
    assert expression["Expression"] == (
        f"IF(requests >= {settings.min_requests}, FILL(errors, 0) / requests, 0)")
    stats = expression_metrics(rate)
    assert stats["errors"]["Metric"]["MetricName"] == "5XXError"
    assert stats["errors"]["Metric"]["Namespace"] == "AWS/ApiGateway"
    assert stats["errors"]["Period"] == period
    latency = alarm_props["LatencyNearTimeout"]
    assert latency["Threshold"] == pytest.approx(
        settings.latency_p99_timeout_fraction * config.api.integration_timeout_seconds * 1000)
    assert (latency["ExtendedStatistic"], latency["Period"]) == ("p99", period)
    # /ask's function, not the whole API: streamed answers last minutes by design.
    assert (latency["Namespace"], latency["MetricName"]) == ("AWS/Lambda", "Duration")
    [function_name] = [d["Value"] for d in latency["Dimensions"] if d["Name"] == "FunctionName"]
    assert function_name["Ref"].startswith("RouterFunction")  # not StreamFunction
    failures = alarm_props["BedrockFailures"]
    assert failures["Threshold"] == settings.bedrock_failures
    assert failures["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    [stat] = expression_metrics(failures).values()
    assert stat["Metric"]["MetricName"] == mc.BEDROCK_FAILURES.name
    assert stat["Metric"]["Namespace"] == METRICS_NAMESPACE
    assert {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]} == router_dims(strategy)
    cost = alarm_props["DailyCost"]
    assert cost["Threshold"] == settings.daily_cost_usd
    [stat] = expression_metrics(cost).values()
    assert (stat["Metric"]["MetricName"], stat["Period"], stat["Stat"]) == ("CostUSD", 86400, "Sum")
    assert cost["EvaluationPeriods"] == 1


# -- the shipped routes.json ----------------------------------------------------------------------


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_alarms_take_thresholds_from_routes_json(
    shipped: Synth, strategy: Strategy, routes: RoutesConfig
) -> None:
    settings = parse_alarms(routes.raw)
    found = alarms(shipped, strategy)
    assert set(found) == {
        "ServerErrorRate", "LatencyNearTimeout", "BedrockFailures", "DeclineRate", "DailyCost"}
    check_thresholds(found, settings, routes, strategy)
    decline = found["DeclineRate"]
    assert decline["Threshold"] == settings.decline_rate
    stats = expression_metrics(decline)
    assert stats["part"]["Metric"]["MetricName"] == mc.DECLINED.name
    assert stats["requests"]["Metric"]["MetricName"] == mc.REQUESTS.name
    assert all("AlarmActions" not in a for a in found.values())  # no e-mail, no topic
    assert shipped.resources(strategy, "AWS::SNS::Topic") == {}


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_dashboard_shows_the_documented_metrics(
    shipped: Synth, variant: Synth, strategy: Strategy, routes: RoutesConfig
) -> None:
    body = dashboard_body(shipped, strategy)
    widgets = body["widgets"]
    titles = [w["properties"].get("title", "") for w in widgets]
    for wanted in ("Requests by outcome", "Latency per stage (ms), p50 and p99",
                   "Cost per hour and running total (USD)", "Answer tokens",
                   "4xx and 5xx: API Gateway", "4xx and 5xx: the function", "Throttles",
                   "Fallbacks, degradations and breakers", "Alarms"):
        assert wanted in titles, wanted
    # The breakdowns are opt-in (routes.json metrics.breakdowns): off as shipped, no graph of
    # metrics the function does not publish.
    assert not any(t.startswith(("Routing mix", "Cost per category")) for t in titles)
    ours = [m for w in widgets for m in widget_metrics(w) if m[0] == METRICS_NAMESPACE]
    assert {m[1] for m in ours} <= set(mc.metric_names())  # nothing the function never sends
    assert all(set(dims(m)) == set(router_dims(strategy)) for m in ours)
    by_title = {w["properties"].get("title"): w for w in widgets}
    opted_in = {
        w["properties"].get("title"): w for w in dashboard_body(variant, strategy)["widgets"]
    }
    mix = widget_metrics(opted_in["Routing mix by category"])
    assert [dims(m) for m in mix] == [
        {"Category": c, "Strategy": strategy.name}
        for c in (*routes.category_names, "out_of_scope")]
    assert {m[1] for m in mix} == {"Requests"}
    targets = widget_metrics(opted_in["Routing mix by answer target"])
    assert [dims(m)["AnswerTarget"] for m in targets] == list(routes.answerer_model_ids())
    outcome = widget_metrics(by_title["Requests by outcome"])
    assert all(dims(m) == router_dims(strategy) for m in outcome)
    cost = by_title["Cost per hour and running total (USD)"]["properties"]["metrics"]
    assert [m[0]["expression"] for m in cost if isinstance(m[0], dict)] == ["RUNNING_SUM(cost)"]
    gateway = widget_metrics(by_title["4xx and 5xx: API Gateway"])
    assert {m[1] for m in gateway} == {"4XXError", "5XXError", "Count"}
    [query] = [w for w in widgets if w["type"] == "log"]
    assert AUDIT_COST_QUERY.replace("\n", " ") in " ".join(query["properties"]["query"].split("\n"))
    function_logs, _ = next(
        (k, v) for k, v in shipped.resources(strategy, "AWS::Logs::LogGroup").items()
        if k.startswith("RouterFunctionLogs"))
    assert f"SOURCE '${{{function_logs}}}'" in query["properties"]["query"]
    # The response cache's row (only when a category is cached): hit rate from hits and misses,
    # lookups, money saved.
    if not (routes.cache.enabled and routes.cache.categories):
        assert "Cache hit rate (%)" not in by_title
        return
    rate = by_title["Cache hit rate (%)"]["properties"]["metrics"]
    assert [m[0]["expression"] for m in rate if isinstance(m[0], dict)] == [
        "100 * FILL(h, 0) / (FILL(h, 0) + FILL(mi, 0))",
        "100 * FILL(s, 0) / (FILL(h, 0) + FILL(mi, 0))",
    ]
    assert {m[1] for m in widget_metrics(by_title["Cache lookups"])} == {
        "CacheHits", "CacheSemanticHits", "CacheMisses", "CacheStale"}
    assert {m[1] for m in widget_metrics(by_title["Money the cache saved (USD/h)"])} == {
        "CacheSavedUSD"}


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_stack_outputs_the_dashboard_url(shipped: Synth, strategy: Strategy) -> None:
    dashboard_id, _ = shipped.one(strategy, "AWS::CloudWatch::Dashboard")
    output = shipped.templates[strategy.stack_name]["Outputs"]["DashboardUrl"]
    assert render_url(output["Value"]) == (
        "https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region=${AWS::Region}"
        f"#dashboards:name=${{{dashboard_id}}}")


def test_cdk_nag_passes(shipped: Synth, variant: Synth) -> None:
    assert shipped.nag_errors() == []
    assert variant.nag_errors() == []


# -- other thresholds, an alarm turned off, and an e-mail -----------------------------------------


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_variant_thresholds_and_sns_topic(variant: Synth, strategy: Strategy) -> None:
    raw = json.loads(active_routes_file().read_text())
    raw["alarms"] = VARIANT_ALARMS
    settings = parse_alarms(raw)
    found = alarms(variant, strategy)
    assert "DeclineRate" not in found  # null turns it off
    check_thresholds(found, settings, parse_routes(raw), strategy)
    topic_id, topic = variant.one(strategy, "AWS::SNS::Topic")
    assert all(a["AlarmActions"] == [{"Ref": topic_id}] for a in found.values())
    _, subscription = variant.one(strategy, "AWS::SNS::Subscription")
    assert subscription["Properties"] == {
        "Endpoint": EMAIL, "Protocol": "email", "TopicArn": {"Ref": topic_id}}
    _, policy = variant.one(strategy, "AWS::SNS::TopicPolicy")
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# -- settings -------------------------------------------------------------------------------------


def test_alarm_settings_defaults_and_errors() -> None:
    assert parse_alarms({}) == parse_alarms({"alarms": DEFAULTS})
    assert parse_alarms({"alarms": {"daily_cost_usd": None}}).daily_cost_usd is None
    bad = [
        ({"decline_rate": 1.5}, "fraction"),
        ({"bedrock_failures": 2.5}, "whole number"),
        ({"period_minutes": None}, "must be a number,"),
        ({"server_error_rate": "5%"}, "or null"),
        ({"daily_cost_usd": -1}, "positive"),
        ({"daily_cost": 5}, "unknown keys"),
    ]
    for section, message in bad:
        with pytest.raises(ConfigError, match=message):
            parse_alarms({"alarms": section})


def test_alarm_email_context() -> None:
    assert alarm_email_from_context(cdk.App(context={"alarmEmail": EMAIL})) == EMAIL
    assert alarm_email_from_context(cdk.App()) is None
    with pytest.raises(ConfigError, match="alarmEmail"):
        alarm_email_from_context(cdk.App(context={"alarmEmail": "not an address"}))


def test_routes_json_has_the_alarms_section(routes: RoutesConfig) -> None:
    section = routes.raw["alarms"]
    assert {k for k in section if not k.startswith("_")} == set(DEFAULTS)
