"""The topic bank: a routes file's categories decide which of the project's topics are adopted,
left out or trained against (``decision.topic_adoption``), at index build time."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import build_index
import numpy as np
import pytest
from llm_router.config import OUT_OF_SCOPE, ConfigError, RoutesConfig, load_routes, parse_routes
from llm_router.config.topic_bank import AUTO_BELOW, load_topic_bank
from llm_router.decision.semantic_index import LABELS_FILE, TOPIC_DECISIONS_FILE, Manifest
from llm_router.decision.topic_adoption import ADOPTED, LEFT_OUT, OFF_TOPIC, match_topics

SCIENCE = Path(__file__).resolve().parents[1] / "examples" / "science" / "routes.json"


def _cluster(rng: np.random.Generator, centre: np.ndarray, n: int) -> np.ndarray:
    x = centre + 0.15 * rng.standard_normal((n, len(centre)))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_topics_are_adopted_left_out_or_trained_against_by_where_they_sit() -> None:
    rng = np.random.default_rng(0)
    a, b, off, far = np.eye(16)[:4]
    vectors = np.vstack([_cluster(rng, a, 20), _cluster(rng, b, 20), _cluster(rng, off, 20)])
    labels = ["a"] * 20 + ["b"] * 20 + [OUT_OF_SCOPE] * 20
    bank = np.vstack([
        _cluster(rng, a, 10),  # inside a
        np.vstack([_cluster(rng, a, 5), _cluster(rng, b, 5)]),  # split between a and b
        _cluster(rng, 0.8 * off + 0.6 * far, 10),  # beside the user's off-topic rows
    ])
    topics = ["inside"] * 10 + ["split"] * 10 + ["elsewhere"] * 10
    decided = {d.topic: d for d in match_topics(vectors, labels, ["a", "b", OUT_OF_SCOPE], bank,
                                                topics)}
    assert (decided["inside"].outcome, decided["inside"].label) == (ADOPTED, "a")
    assert (decided["split"].outcome, decided["split"].label) == (LEFT_OUT, None)
    assert (decided["elsewhere"].outcome, decided["elsewhere"].label) == (OFF_TOPIC, OUT_OF_SCOPE)
    assert decided["inside"].shares["a"] == 1.0


def test_the_bank_is_part_of_the_prompts_hash_only_when_used() -> None:
    raw = json.loads(SCIENCE.read_text(encoding="utf-8"))
    with_bank = parse_routes(raw)
    without = copy.deepcopy(raw)
    without["out_of_scope"]["topic_bank"] = False
    plain = parse_routes(without)
    assert with_bank.reference_prompts() == plain.reference_prompts()
    assert with_bank.reference_prompts_hash() != plain.reference_prompts_hash()
    without["out_of_scope"]["topic_bank"] = "yes"
    with pytest.raises(ConfigError, match="topic_bank must be true, false or 'auto'"):
        parse_routes(without)


def test_auto_uses_the_bank_only_for_files_with_few_off_topic_prompts(
    routes: RoutesConfig,
) -> None:
    """The tutor (405 off-topic prompts, no topic_bank key) stays as it was; a file with 40 uses
    the bank unless it says false."""
    assert "topic_bank" not in routes.raw["out_of_scope"]
    assert not routes.out_of_scope.topic_bank
    raw = copy.deepcopy(json.loads(SCIENCE.read_text(encoding="utf-8")))
    del raw["out_of_scope"]["topic_bank"]
    assert len(raw["out_of_scope"]["reference_prompts"]) < AUTO_BELOW
    assert parse_routes(raw).out_of_scope.topic_bank
    raw["out_of_scope"]["topic_bank"] = False
    assert not parse_routes(raw).out_of_scope.topic_bank


def test_the_bank_has_no_duplicates_and_every_topic_has_questions() -> None:
    bank = load_topic_bank()
    questions = [q for qs in bank.values() for q in qs]
    assert len(bank) >= 40 and len(questions) == len(set(questions))


def test_the_science_index_adopts_its_science_topics_and_trains_against_the_rest(
    tmp_path: Path,
) -> None:
    config = load_routes(SCIENCE)
    build_index.ensure_index(config, tmp_path, "stand-in")
    decided = {
        d["topic"]: d for d in json.loads((tmp_path / TOPIC_DECISIONS_FILE).read_text())
    }
    assert decided["mechanics"]["label"] == "physics"
    assert decided["general_chemistry"]["label"] == "chemistry"
    assert decided["cell_molecular_biology"]["label"] == "biology"
    for topic in ("cooking_food", "law_civil_contracts", "history", "programming"):
        assert decided[topic]["outcome"] == OFF_TOPIC, decided[topic]
    rows = json.loads((tmp_path / LABELS_FILE).read_text())
    kept = sum(len(load_topic_bank()[t]) for t, d in decided.items() if d["label"] is not None)
    assert len(rows) == len(config.reference_prompts()) + kept == Manifest.read(tmp_path).vectors
    assert rows[: len(config.reference_prompts())] == [
        {"category": c, "prompt": p} for c, p in config.reference_prompts()
    ]


def test_the_function_checks_the_index_without_reading_the_bank(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled configuration carries the hash (bank included); the Lambda has no bank."""
    from llm_router import config as config_module

    from layers.function_asset import compile_routes

    compiled = tmp_path / "routes.compiled.json"
    compiled.write_text(json.dumps(compile_routes(SCIENCE)), encoding="utf-8")
    expected = load_routes(SCIENCE).reference_prompts_hash()

    def no_bank() -> None:
        raise AssertionError("the function read the topic bank")

    monkeypatch.setattr(config_module, "load_topic_bank", no_bank)
    function_config = config_module.load_compiled_routes(compiled)
    assert function_config.out_of_scope.topic_bank
    assert function_config.reference_prompts_hash() == expected
