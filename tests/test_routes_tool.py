"""A user's own routes file: scripts/routes.py (skeleton, checks, conflicts), the one --routes
option and index location, and the reports and texts that follow the configuration.

Configuration-generic: run against the routes file in place (and, in ``scripts/setup.sh test``,
every example), plus a made-up beekeeping/cycling file built here from the skeleton command.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import routes as routes_cli
from build_index import default_index_dir
from conftest import EXAMPLE_ROUTES_FILES, ROUTES_IN_PLACE, TUTOR_ROUTES_FILE
from llm_router.config import (
    OUT_OF_SCOPE,
    ROUTES_FILE_ENV,
    ConfigError,
    RoutesConfig,
    load_routes,
    parse_routes,
)
from llm_router.decision.classifiers.llm import build_prompt
from made_up_routes import CATEGORIES, PROMPTS, made_up_routes, write_made_up_routes
from routes_kit.conflicts import label_scores, off_topic_inside

pytestmark = pytest.mark.generic


@pytest.fixture(autouse=True)
def _restore_routes_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """--routes sets ROUTES_FILE for the process: restored after each test."""
    monkeypatch.setenv(ROUTES_FILE_ENV, os.environ[ROUTES_FILE_ENV])


@pytest.fixture(scope="module")
def made_up_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_made_up_routes(
        ROUTES_IN_PLACE, tmp_path_factory.mktemp("made-up") / "routes.json"
    )


@pytest.fixture(scope="module")
def made_up(made_up_file: Path) -> RoutesConfig:
    return load_routes(made_up_file)


def check(path: Path, *extra: str) -> tuple[int, dict]:
    """``routes.py check --format json`` in-process: its exit code and its report."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = routes_cli.main(["check", "--routes", str(path), "--format", "json", *extra])
    return code, json.loads(buffer.getvalue())


@pytest.mark.parametrize(
    "path", sorted({ROUTES_IN_PLACE, *EXAMPLE_ROUTES_FILES}), ids=lambda p: p.parent.name
)
def test_every_shipped_routes_file_and_the_one_in_place_has_no_errors(path: Path) -> None:
    code, report = check(path, "--embeddings", "none")
    assert report["errors"] == 0, report["problems"]
    assert code == 0


def test_the_cdk_app_takes_the_routes_file_as_context(tmp_path: Path) -> None:
    import aws_cdk as cdk

    from stacks.app_builder import AppSettings, build_app

    missing = tmp_path / "nope.json"
    app = cdk.App(context={"routesFile": str(missing)})
    assert AppSettings.from_context(app.node).routes_file == str(missing)
    with pytest.raises(ConfigError, match="nope.json does not exist"):
        build_app(app)


def test_a_fresh_skeleton_names_what_to_write(tmp_path: Path) -> None:
    out = tmp_path / "mine.json"
    assert routes_cli.main(
        ["new", "billing", "refunds", "--out", str(out), "--template", str(ROUTES_IN_PLACE)]
    ) == 0
    raw = json.loads(out.read_text())
    assert list(raw["categories"]) == ["billing", "refunds"]
    assert raw["default_category"] == "billing"
    assert raw["routing"]["ambiguous_to"] == "likeliest"
    assert all(set(p["answerers"]) == {"billing", "refunds"} for p in raw["presets"].values())
    code, report = check(out, "--embeddings", "none")
    assert code == 1
    wheres = {p["where"] for p in report["problems"] if p["level"] == "error"}
    assert "categories.billing.reference_prompts" in wheres  # no prompts yet
    assert "answering.system_prompt" in wheres and "out_of_scope.decline_message" in wheres
    assert "categories.refunds.description" in wheres
    # a second run does not overwrite it
    assert routes_cli.main(["new", "billing", "--out", str(out)]) == 1


@pytest.mark.parametrize("names", [["Billing"], ["out_of_scope"], ["a", "a"], ["a b"]])
def test_skeleton_refuses_bad_category_names(tmp_path: Path, names: list[str]) -> None:
    assert routes_cli.main(["new", *names, "--out", str(tmp_path / "x.json")]) == 1
    assert not (tmp_path / "x.json").exists()


def test_the_made_up_file_from_the_skeleton_is_valid(made_up_file: Path) -> None:
    code, report = check(made_up_file, "--embeddings", "none")
    assert (code, report["errors"]) == (0, 0), report["problems"]
    # 14 prompts a category: a warning, not silence
    assert {p["where"] for p in report["problems"]} >= {
        f"categories.{c}.reference_prompts" for c in CATEGORIES
    }


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda r: r.update(schema_version=2), "schema_version"),
        (lambda r: r["categories"]["cycling"].update(reference_prompts=PROMPTS["cycling"][:5]),
         "categories.cycling.reference_prompts"),
        (lambda r: r["out_of_scope"]["reference_prompts"].append(PROMPTS["cycling"][0]),
         f"prompt {PROMPTS['cycling'][0].casefold()!r}"),
        (lambda r: r.update(default_category="law"), "routes file"),
        (lambda r: r["routing"].update(ambiguous_to="law"), "routes file"),
    ],
)
def test_check_names_each_error(tmp_path: Path, made_up_file: Path, change, where: str) -> None:
    raw = json.loads(made_up_file.read_text())
    change(raw)
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(raw))
    code, report = check(path, "--embeddings", "none")
    assert code == 1
    assert where in {p["where"] for p in report["problems"] if p["level"] == "error"}


def test_label_scores_leave_the_prompt_itself_out() -> None:
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.95, 0.05]], dtype=float)
    labels = ["a", "a", "b", "b", OUT_OF_SCOPE]
    scores = label_scores(vectors, labels, k=5)
    assert set(scores[0]) == {"a", "b", OUT_OF_SCOPE}
    assert scores[0]["a"] == pytest.approx(float(vectors[1] @ vectors[0] / np.linalg.norm(
        vectors[1])), abs=1e-9)  # its only other "a"
    assert OUT_OF_SCOPE not in scores[4]  # the only off-topic prompt has no other to compare


def test_off_topic_prompts_inside_a_category_are_found_and_dropped(
    tmp_path: Path, made_up: RoutesConfig, made_up_file: Path
) -> None:
    raw = json.loads(made_up_file.read_text())
    inside = "How do I replace the brake pads on my bicycle?"  # a cycling question, mislabelled
    raw["out_of_scope"]["reference_prompts"].append(inside)
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(raw))
    code, report = check(path, "--embeddings", "stand-in")
    flagged = {p["where"] for p in report["problems"]}
    assert f"out_of_scope prompt {inside!r}" in flagged
    assert code == 0  # a warning: a near miss may be meant
    assert check(path, "--embeddings", "stand-in", "--strict")[0] == 1
    check(path, "--embeddings", "stand-in", "--drop-inside")
    kept = json.loads(path.read_text())["out_of_scope"]["reference_prompts"]
    assert inside not in kept and len(kept) >= len(raw["out_of_scope"]["reference_prompts"]) - 10


def test_off_topic_inside_needs_to_be_as_near_as_the_category_prompts(
    made_up: RoutesConfig,
) -> None:
    # Two tight categories and loose off-topic prompts: one off-topic prompt in the middle of
    # "a" is inside; one only marginally nearer "b" than the scattered off-topic ones is not.
    rng = np.random.default_rng(0)
    a = np.array([1.0, 0, 0, 0]) + rng.normal(0, 0.05, (6, 4))
    b = np.array([0, 1.0, 0, 0]) + rng.normal(0, 0.05, (6, 4))
    off = rng.normal(0, 1, (8, 4)) + np.array([0, 0, 2.0, 0])
    vectors = np.vstack([a, b, off, [[1.0, 0.02, 0, 0]], [[0.3, 0.5, 0.6, 0.5]]])
    labels = ["a"] * 6 + ["b"] * 6 + [OUT_OF_SCOPE] * 10
    prompts = [f"p{i}" for i in range(len(labels))]
    found = off_topic_inside(made_up, vectors, labels, prompts)
    assert [(p, c) for p, c, *_ in found] == [("p20", "a")]


def test_one_index_location_per_routes_content(tmp_path: Path, made_up_file: Path) -> None:
    copy = tmp_path / "other-name.json"
    copy.write_text(made_up_file.read_text())
    first, second = load_routes(made_up_file), load_routes(copy)
    assert default_index_dir(first, "stand-in") == default_index_dir(second, "offline-stand-in")
    raw = json.loads(made_up_file.read_text())
    raw["categories"]["cycling"]["reference_prompts"].append("How do I wax a chain?")
    changed = parse_routes(raw)
    assert default_index_dir(changed, "stand-in") != default_index_dir(first, "stand-in")
    assert default_index_dir(first, "bedrock") != default_index_dir(first, "stand-in")


def test_the_classifier_prompt_comes_from_the_routes_file(made_up: RoutesConfig) -> None:
    prompt = build_prompt(made_up, "How do I oil my chain?")
    assert prompt.startswith(made_up.classifier.prompt_intro)
    assert "tutor" not in prompt.casefold()
    raw = dict(made_up.raw)
    raw["classifier"] = {k: v for k, v in raw["classifier"].items() if k != "prompt_intro"}
    generic = build_prompt(parse_routes(raw), "How do I oil my chain?")
    assert generic.startswith("You route questions to the assistant for their topic.")


def test_the_standin_classifier_leaves_the_users_domain_out_of_the_world(standin) -> None:
    from bedrock_standin.minilm import shared_model
    from bedrock_standin.text_models import WORLD_TOPICS, TextModels

    models = TextModels(shared_model())
    medicine = {"medicine": "questions about medicine: diseases, symptoms, treatments, drugs",
                "none": "the question is about something else, none of the topics above"}
    kept = models.world_topics({"medicine": medicine["medicine"]})
    assert "biology, the human body and medicine" not in kept
    assert "cooking, food and recipes" in kept
    tutor = load_routes(TUTOR_ROUTES_FILE)
    labels = {c.name: c.description for c in tutor.categories.values()}
    assert models.world_topics(labels) == WORLD_TOPICS  # the tutor's figures stay as they were
    assert models.classify(medicine, "What are the symptoms of measles?") == "medicine"


def test_reports_follow_the_routes_file(made_up: RoutesConfig) -> None:
    import costs
    import resilience

    scenario = costs.load_scenario(routes=made_up)
    assert set(costs.entries(scenario["categories"])) == set(made_up.categories)
    report = costs.compute(scenario)
    assert report.answers_cost > 0
    assert scenario["premium_category"] == made_up.dearest_category()
    mixed = costs.for_routes(costs.load_scenario(), made_up, {"cycling": 1000})
    assert mixed["categories"]["cycling"]["questions_per_day"] == 1000
    with pytest.raises(costs.CostError, match="unknown category 'law'"):
        costs.for_routes(costs.load_scenario(), made_up, {"law": 1})
    focus = resilience.focus_category(made_up)
    table = resilience.scenarios(made_up)
    assert {s.question for s in table} <= {
        p for c in made_up.categories.values() for p in c.reference_prompts
    }
    assert table[0].question == made_up.categories[focus].reference_prompts[0]


def test_cost_calculator_prices_a_routes_file(made_up_file: Path, capsys) -> None:
    import cost_calculator

    assert cost_calculator.main(
        ["--routes", str(made_up_file), "--traffic", "cycling=20000", "--format", "json"]
    ) == 0
    report = json.loads(capsys.readouterr().out)
    assert "beekeeping" in json.dumps(report) and "history" not in json.dumps(report)
    assert cost_calculator.main(["--routes", str(made_up_file), "--traffic", "math=1"]) == 2


def test_the_banner_examples_are_the_routes_files_own(made_up: RoutesConfig) -> None:
    from local_api.examples import banner_examples

    examples = banner_examples(made_up, ["semantic", "llm-assisted", "hybrid"])
    assert examples == [
        ("semantic", PROMPTS[CATEGORIES[0]][0]), ("llm-assisted", PROMPTS[CATEGORIES[1]][0])
    ]


def test_a_missing_routes_file_is_a_clear_error(tmp_path: Path, capsys) -> None:
    from routes_file import use_routes_file

    with pytest.raises(ConfigError, match="does not exist"):
        use_routes_file(tmp_path / "nope.json")
    assert routes_cli.main(["check", "--routes", str(tmp_path / "nope.json")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_made_up_routes_share_nothing_domain_specific_with_the_tutor() -> None:
    raw = made_up_routes(TUTOR_ROUTES_FILE)
    text = json.dumps({k: raw[k] for k in ("categories", "answering", "classifier")}).casefold()
    assert "history" not in text and "math" not in text and "tutor" not in text


def test_a_schema_version_1_file_from_before_keeps_working(tmp_path: Path) -> None:
    """Files written before prompt_intro and ``likeliest`` existed parse and check as they did:
    the new keys are optional, and an explicit ``ambiguous_to`` is kept."""
    raw = json.loads(TUTOR_ROUTES_FILE.read_text())
    del raw["classifier"]["prompt_intro"]
    raw["routing"]["ambiguous_to"] = "premium"
    path = tmp_path / "old.json"
    path.write_text(json.dumps(raw))
    config = load_routes(path)
    assert raw["schema_version"] == 1
    assert build_prompt(config, "q").startswith("You route questions to the assistant")
    assert check(path, "--embeddings", "none")[1]["errors"] == 0
