"""scripts/cost_calculator.py: the blog's cost tables, what-ifs, JSON output and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import cost_calculator as cc
import costs
import pytest
from conftest import HAIKU, SONNET, active_routes_file
from llm_router.config import load_routes
from llm_router.config.settings import priced_model_id

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "scripts" / "cost_calculator.py"


def report_for(*argv: str) -> costs.Report:
    """The report the command line would print for ``argv``."""
    args = cc.build_parser().parse_args(list(argv))
    scenario = costs.load_scenario(args.scenario or ())
    return costs.compute(costs.apply_overrides(scenario, cc.overrides_from_args(args, scenario)))


def answers(report: costs.Report) -> dict[str, costs.AnswerLine]:
    return {line.category: line for line in report.answers}


def routing_cost(report: costs.Report, strategy: str) -> Decimal:
    line = report.routing_for(strategy)
    assert line is not None
    return line.monthly_cost


def run_script(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/cost_calculator.py", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def default() -> costs.Report:
    return costs.compute(costs.load_scenario())


# --- the blog's figures --------------------------------------------------------------------


def test_default_reproduces_the_blogs_bedrock_figures_exactly(default: costs.Report) -> None:
    lines = answers(default)
    assert lines["history"].model_id == HAIKU
    assert lines["history"].questions == 1_500_000
    assert lines["history"].input_tokens == 225_000_000
    assert lines["history"].output_tokens == 450_000_000
    assert lines["history"].input_cost == Decimal("56.25")
    assert lines["history"].output_cost == Decimal("562.50")
    assert lines["history"].monthly_cost == Decimal("618.75")
    assert lines["math"].model_id == SONNET
    assert lines["math"].monthly_cost == Decimal("7425")
    assert default.answers_cost == Decimal("8043.75")
    assert routing_cost(default, costs.LLM_ASSISTED) == Decimal("90")
    assert routing_cost(default, costs.SEMANTIC) == Decimal("9")
    assert default.routing_for(costs.HYBRID) is None  # no escalation rate in the blog
    # ...and they are the figures the scenario file records as the blog's.
    blog = default.blog_figures
    assert lines["history"].monthly_cost == blog["answers"]["history"]
    assert lines["math"].monthly_cost == blog["answers"]["math"]
    assert routing_cost(default, costs.LLM_ASSISTED) == blog["routing"]["llm-assisted"]
    assert routing_cost(default, costs.SEMANTIC) == blog["routing"]["semantic"]


def test_classifier_output_tokens_are_computed_but_not_in_the_blogs_90(
    default: costs.Report,
) -> None:
    classifier = default.routing_for(costs.LLM_ASSISTED)
    assert classifier is not None and not classifier.output_tokens_counted
    assert classifier.output_tokens == 3_000_000
    assert classifier.output_cost == Decimal("1.80")
    assert classifier.monthly_cost_with_output_tokens == Decimal("91.80")
    counted = report_for("--count-classifier-output")
    assert routing_cost(counted, costs.LLM_ASSISTED) == Decimal("91.80")
    assert routing_cost(counted, costs.SEMANTIC) == Decimal("9")  # embeddings have no output


def test_lambda_and_api_gateway_from_unit_prices(default: costs.Report) -> None:
    infra = default.infrastructure
    assert (infra.architecture, infra.memory_mb, infra.ephemeral_mb) == ("x86_64", 1024, 512)
    assert infra.requests == 3_000_000
    assert infra.gb_seconds == 6_000_000  # 1.5M x 1 s + 1.5M x 3 s at 1 GB
    assert infra.free_gb_seconds == 400_000 and infra.free_requests == 1_000_000
    assert infra.compute_cost == Decimal("5600000") * Decimal("0.0000166667")
    assert infra.request_cost == Decimal("0.40")
    assert infra.ephemeral_cost == 0  # 512 MB is free
    assert infra.api_gateway_cost == Decimal("10.50")
    assert costs.cents(infra.monthly_cost) == Decimal("104.23")


def test_the_blogs_98_9_is_the_pricing_calculators_convention(default: costs.Report) -> None:
    calculator = default.infrastructure_calculator
    assert calculator.days_per_month == Decimal(730) / Decimal(24)
    assert calculator.free_tier_scope == "per-function"
    assert costs.cents(calculator.monthly_cost) == Decimal("98.91")
    assert abs(calculator.monthly_cost - Decimal("98.9")) < Decimal("0.01")
    # The same conventions from the command line give the same figure.
    flags = report_for("--days-per-month", "730/24", "--free-tier-scope", "per-function")
    assert flags.infrastructure.monthly_cost == calculator.monthly_cost
    assert "730-hour month" in costs.explain_infrastructure(default)


def test_default_models_match_the_routes_json_blog_preset() -> None:
    config = load_routes(preset="blog-2024")
    scenario = costs.load_scenario()
    assert scenario["routing"]["classifier_model"] == config.classifier.model_id
    assert scenario["routing"]["embedding_model"] == config.embedding.model_id
    for category in config.category_names:
        assert scenario["categories"][category]["answerer"] == config.answerer_for(category)


def test_model_prices_are_the_routes_json_table() -> None:
    """One price table: the calculator's unit prices are routes.json's, exactly."""
    config = load_routes(preset="blog-2024")
    table = json.loads(active_routes_file().read_text(), parse_float=Decimal)["prices"]
    scenario = costs.load_scenario()
    assert "models" not in costs.read_scenario_file(costs.DEFAULT_SCENARIO_PATH)
    for model_id in config.all_model_ids():
        price_in, price_out = costs.model_prices(scenario, model_id)
        foundation = priced_model_id(model_id)
        assert price_in == table[foundation]["input_per_1k"], model_id
        assert price_out == table[foundation]["output_per_1k"], model_id
        assert float(price_in) == config.price_of(model_id).input_per_1k  # the function's view


def test_a_price_change_in_routes_json_reaches_the_calculator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = json.loads(active_routes_file().read_text())
    raw["prices"][HAIKU]["output_per_1k"] = 0.0025
    routes = tmp_path / "routes.json"
    routes.write_text(json.dumps(raw))
    monkeypatch.setenv("ROUTES_FILE", str(routes))
    history = answers(report_for())["history"]
    assert history.output_cost == Decimal("1125")  # 450M x $0.0025/1k
    # A scenario's models section still overrides the table, key by key.
    partial = tmp_path / "haiku.json"
    partial.write_text(json.dumps({"models": {HAIKU: {"output_per_1k": 0.00125}}}))
    assert answers(report_for("--scenario", str(partial)))["history"].monthly_cost == Decimal(
        "618.75"
    )


def test_a_model_without_a_price_is_refused_not_priced_at_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = json.loads(active_routes_file().read_text())
    del raw["prices"][SONNET]
    routes = tmp_path / "routes.json"
    routes.write_text(json.dumps(raw))
    monkeypatch.setenv("ROUTES_FILE", str(routes))
    with pytest.raises(costs.CostError, match=f"unknown model \\(answerer of math\\) '{SONNET}'"):
        report_for()
    raw["prices"][HAIKU] = {"input_per_1k": "cheap"}
    routes.write_text(json.dumps(raw))
    with pytest.raises(costs.CostError, match="routes.json: prices"):
        report_for()


def test_an_inference_profile_is_priced_as_its_foundation_model(default: costs.Report) -> None:
    profile = report_for("--answerer", f"math=us.{SONNET}")
    assert answers(profile)["math"].model_id == f"us.{SONNET}"
    assert answers(profile)["math"].monthly_cost == answers(default)["math"].monthly_cost


def test_default_text_output_formats_every_figure_as_dollars() -> None:
    text = cc.run([])
    for figure in (
        "$618.75",
        "$7,425.00",
        "$8,043.75",
        "$90.00",
        "$9.00",
        "$1.80",
        "$91.80",
        "$104.23",
        "$98.90",
        "$98.91",
        "$14,850.00",
        "$6,716.25",
    ):
        assert figure in text, figure
    assert "1. Answer generation per category" in text
    assert "2. Routing implementation per strategy" in text


# --- saving against all-premium ------------------------------------------------------------


def test_saving_against_answering_everything_with_the_premium_model(default: costs.Report) -> None:
    base = default.baseline
    assert (base.category, base.model_id) == ("math", SONNET)
    # 3M questions x (150 x $0.003 + 300 x $0.015) / 1k
    assert base.answers == Decimal("14850")
    totals = {s.strategy: s for s in default.strategies}
    assert totals[costs.LLM_ASSISTED].saving == Decimal("14850") - Decimal("8043.75") - 90
    assert totals[costs.SEMANTIC].saving == Decimal("6797.25")
    for total in totals.values():
        assert total.saving == base.total - total.total
        assert total.saving_percent == total.saving / base.total * 100


# --- what-ifs ------------------------------------------------------------------------------


def test_doubling_math_traffic_doubles_math_answer_cost(default: costs.Report) -> None:
    doubled = report_for("--math-per-day", "100000")
    assert answers(doubled)["math"].monthly_cost == 2 * answers(default)["math"].monthly_cost
    assert answers(doubled)["history"] == answers(default)["history"]
    assert report_for("--traffic", "math=100000").answers == doubled.answers
    # Routing pays per question: 4.5M instead of 3M.
    assert routing_cost(doubled, costs.SEMANTIC) == Decimal("13.50")


def test_switching_architecture_changes_only_lambda(default: costs.Report) -> None:
    arm = report_for("--architecture", "arm64")
    assert arm.answers == default.answers
    assert arm.routing == default.routing
    assert arm.baseline.answers == default.baseline.answers
    assert arm.infrastructure.api_gateway_cost == default.infrastructure.api_gateway_cost
    assert arm.infrastructure.request_cost == default.infrastructure.request_cost
    assert arm.infrastructure.compute_cost == Decimal("5600000") * Decimal("0.0000133334")
    assert arm.infrastructure.compute_cost < default.infrastructure.compute_cost
    for ours, theirs in zip(arm.strategies, default.strategies, strict=True):
        assert theirs.total - ours.total == (
            default.infrastructure.monthly_cost - arm.infrastructure.monthly_cost
        )


def test_partial_scenario_file_overrides_one_price(tmp_path: Path, default: costs.Report) -> None:
    partial = tmp_path / "haiku.json"
    partial.write_text(json.dumps({"models": {HAIKU: {"output_per_1k": 0.0025}}}))
    report = report_for("--scenario", str(partial))
    history = answers(report)["history"]
    assert history.input_cost == Decimal("56.25")  # the input price was kept
    assert history.output_cost == Decimal("1125")  # 450M x $0.0025/1k
    assert answers(report)["math"] == answers(default)["math"]
    assert report.routing == default.routing
    assert report.infrastructure == default.infrastructure


def test_command_line_what_ifs() -> None:
    free = report_for("--no-free-tier").infrastructure
    assert free.monthly_cost == Decimal("6000000") * Decimal("0.0000166667") + Decimal("11.10")
    storage = report_for("--ephemeral-mb", "1024").infrastructure
    assert storage.ephemeral_gb_seconds == 3_000_000  # 0.5 GB above the free 512 MB x 6M s
    assert storage.ephemeral_cost == Decimal("3000000") * Decimal("0.0000000309")
    assert report_for("--memory-mb", "2048").infrastructure.gb_seconds == 12_000_000
    assert report_for("--duration", "math=6").infrastructure.gb_seconds == 10_500_000
    assert report_for("--days-per-month", "31").questions == 3_100_000
    tokens = answers(report_for("--input-tokens", "300", "--output-tokens", "600"))
    assert tokens["history"].monthly_cost == 2 * Decimal("618.75")
    hybrid = report_for("--hybrid-escalation-rate", "0.2")
    assert routing_cost(hybrid, costs.HYBRID) == Decimal("9") + Decimal("0.2") * 90
    cheaper = report_for("--price", f"{SONNET}=0.0015/0.0075")
    assert answers(cheaper)["math"].monthly_cost == Decimal("3712.5")
    new = report_for(
        "--price", "example.new-model=0.001/0.002", "--answerer", "math=example.new-model"
    )
    assert answers(new)["math"].model_id == "example.new-model"
    assert answers(new)["math"].monthly_cost == Decimal("225") + Decimal("900")
    assert new.baseline.model_id == "example.new-model"  # the premium category's answerer


# --- JSON ----------------------------------------------------------------------------------


def test_json_output_from_the_script_matches_the_computation(default: costs.Report) -> None:
    result = run_script("--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    figures = {line["category"]: line for line in data["answers"]["categories"]}
    assert figures["history"]["monthly_cost"] == 618.75
    assert figures["math"]["monthly_cost"] == 7425
    assert figures["math"]["questions_per_month"] == 1_500_000
    assert data["routing"]["llm-assisted"]["monthly_cost"] == 90
    assert data["routing"]["llm-assisted"]["monthly_cost_with_output_tokens"] == 91.8
    assert data["routing"]["semantic"]["monthly_cost"] == 9
    assert data["lambda_api_gateway"]["monthly_cost"] == 104.23
    calculator = data["lambda_api_gateway"]["aws_pricing_calculator_conventions"]
    assert calculator["monthly_cost"] == 98.91
    assert data["all_premium"]["answers"] == 14850
    assert data["blog_figures"]["lambda_api_gateway"] == 98.9
    # Every money figure is the computation rounded to the cent, as a number.
    assert data == costs.report_to_dict(default)
    for strategy in default.strategies:
        row = data["strategies"][strategy.strategy]
        assert row["total"] == float(costs.cents(strategy.total))
        assert row["saving_vs_all_premium"] == float(costs.cents(strategy.saving))
        assert isinstance(row["total"], float)


def test_default_text_output_from_the_script() -> None:
    result = run_script()
    assert result.returncode == 0, result.stderr
    assert result.stdout == cc.run([])
    assert "$7,425.00" in result.stdout


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--traffic", "physics=10"], "unknown category 'physics'"),
        (["--duration", "art=2"], "unknown category 'art'"),
        (["--answerer", "history=no.such-model"], "unknown model"),
        (["--classifier-model", "no.such-model"], "unknown classifier model"),
        (["--price", "no.such-model=1/2"], "unknown model 'no.such-model' in --price"),
        (["--price", f"{HAIKU}=cheap/1"], "must be a number"),
        (["--price", HAIKU], "MODEL_ID=IN/OUT"),
        (["--history-per-day", "-5"], "at least 0"),
        (["--hybrid-escalation-rate", "1.5"], "at most 1"),
        (["--memory-mb", "64"], "lambda.memory_mb"),
        (["--premium-category", "art"], "unknown category 'art'"),
        (["--architecture", "mips"], "invalid choice"),
        (["--scenario", "/no/such/file.json"], "cannot read scenario file"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = cc.main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_bad_scenario_file_from_the_script(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"categories": {"history": {"answerer": "no.such-model"}}}')
    result = run_script("--scenario", str(broken))
    assert result.returncode == 2
    assert "unknown model (answerer of history) 'no.such-model'" in result.stderr
    assert "Traceback" not in result.stderr
    not_json = tmp_path / "not.json"
    not_json.write_text("{ nope")
    result = run_script("--scenario", str(not_json))
    assert result.returncode == 2 and "not valid JSON" in result.stderr


def test_deep_merge_keeps_what_the_override_does_not_name() -> None:
    base: dict[str, Any] = {"a": {"b": 1, "c": {"d": 2}}, "e": [1]}
    merged = costs.deep_merge(base, {"a": {"c": {"d": 3}}, "e": [2]})
    assert merged == {"a": {"b": 1, "c": {"d": 3}}, "e": [2]}
    assert base == {"a": {"b": 1, "c": {"d": 2}}, "e": [1]}
