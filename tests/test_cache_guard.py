"""The semantic cache's guard rule by rule, and the paraphrase evaluation that fits its threshold.

The rule tests use questions written here; the evaluation reads ``eval/cache_pairs.jsonl``
(written for the cache, not drawn from ../shared/eval)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from llm_router.config import RoutesConfig
from llm_router.pipeline.cache.guard import Facts, facts, same_facts
from llm_router.pipeline.cache.keys import cache_text

PAIRS = Path(__file__).resolve().parents[1] / "eval" / "cache_pairs.jsonl"


def same(a: str, b: str) -> bool:
    return same_facts(facts(a), facts(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Solve 2x + 3 = 5", "Solve 2x + 3 = 7"),  # a number
        ("What is 1,000 divided by 8?", "What is 100 divided by 8?"),
        ("What is three times four?", "What is three times five?"),  # number words
        ("Who was the first king of Poland?", "Who was the second king of Poland?"),  # ordinals
        ("When did World War I end?", "When did World War II end?"),  # Roman numerals
        ("Who was Henry VIII?", "Who was Henry VII?"),
        ("What is the derivative of x^2?", "What is the derivative of y^2?"),  # variables
        ("What is the derivative of sin(x)?", "What is the derivative of cos(x)?"),  # functions
        ("Factor x^2 - 9", "Factor x^2 + 9"),  # an operator
        ("Why did the Roman Empire fall?", "Why did the Ottoman Empire fall?"),  # a name
        ("Explain the role of NATO.", "Explain the role of SEATO."),  # acronyms
        ("What happened in March 1917?", "What happened in October 1917?"),  # months
        ("What happened in the summer of 1914?", "What happened in the spring of 1914?"),
        ("Which empire ruled in 200 BC?", "Which empire ruled in 200 AD?"),  # eras
        ("Which countries were not neutral?", "Which countries were neutral?"),  # negation
        ("Why didn't Rome fall sooner?", "Why did Rome fall sooner?"),
        ("Who was the first emperor of Rome?", "Who was the last emperor of Rome?"),  # contrasts
        ("What happened before the Battle of Verdun?", "What happened after the Battle of Verdun?"),
        ("when did napoleon die", "when did wellington die"),  # names in lower case
    ],
)
def test_different_facts_are_never_the_same(a: str, b: str) -> None:
    assert not same(a, b)
    assert not same(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("When did World War II end?", "In which year did World War II come to an end?"),
        ("Why did the Roman Empire fall?", "What caused the fall of the Roman Empire?"),
        ("What is 15% of 80?", "Calculate 15% of 80."),
        ("What is 1,000 plus 5?", "Calculate 1000 plus 5."),  # thousands separators
        ("when did napoleon die", "napoleon: when did he die"),  # same content words
        ("Who was Cleopatra?", "Tell me who Cleopatra was."),
    ],
)
def test_paraphrases_keep_the_same_facts(a: str, b: str) -> None:
    assert same(a, b)


def test_a_sentence_opening_function_word_is_not_a_name() -> None:
    assert facts("When did it happen? Explain.").names == frozenset()
    assert facts("Napoleon was exiled where?").names == {"napoleon"}  # unknown opener: a name
    assert facts("I think Henry I was king").names == {"henry"}  # "I": a pronoun, a numeral


def test_facts_survive_their_stored_form() -> None:
    original = facts("Who was the first king of Poland in 1025, not Bolesław?")
    assert Facts.from_dict(json.loads(json.dumps(original.as_dict()))) == original


def test_cache_text_folds_case_space_and_closing_punctuation_only() -> None:
    assert cache_text("  When did WWII  END?! ") == cache_text("when did wwii end")
    assert cache_text("Solve 2x+3=5") != cache_text("Solve 2x+3=7")
    assert cache_text("Is 5 > 3?") != cache_text("Is 5 3?")


# -- the evaluation set ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scored(routes: RoutesConfig, bedrock_client: Any, standin: Any) -> list[dict[str, Any]]:
    from evaluation import cache_pairs

    return cache_pairs.score_pairs(cache_pairs.read_pairs(PAIRS), routes, bedrock_client, standin)


def test_the_set_has_at_least_200_pairs_of_both_kinds() -> None:
    rows = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 200
    kinds = {r["kind"] for r in rows if r["expect"] == "miss"}
    assert {"number", "name", "date", "negation", "formula"} <= kinds
    assert sum(r["expect"] == "hit" for r in rows) >= 100


def test_the_paraphrase_evaluation_has_zero_wrong_hits(
    routes: RoutesConfig, scored: list[dict[str, Any]]
) -> None:
    from evaluation import cache_pairs

    result = cache_pairs.report(scored, routes.cache.semantic_min_similarity)
    assert result["overall"]["wrong_hits"] == 0, result["wrong"]
    assert result["overall"]["precision"] == 1.0
    assert result["overall"]["hit_rate"] >= 0.6
    # Each half of the rule alone serves wrong answers: both are needed.
    assert result["similarity_alone"]["wrong_hits"] > 0
    assert result["guard_alone"]["wrong_hits"] > 0


def test_routes_json_holds_the_threshold_fitted_on_the_set(
    routes: RoutesConfig, scored: list[dict[str, Any]]
) -> None:
    from evaluation import cache_pairs

    assert cache_pairs.fit_threshold(scored) == routes.cache.semantic_min_similarity


def test_evaluate_reports_the_pairs_and_fits_into_a_routes_copy(
    tmp_path: Path, routes: RoutesConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    import evaluate

    assert routes.source_path is not None
    copy = tmp_path / "routes.json"
    raw = json.loads(routes.source_path.read_text(encoding="utf-8"))
    raw["cache"]["semantic_min_similarity"] = 0.5
    copy.write_text(json.dumps(raw), encoding="utf-8")
    with contextlib.suppress(SystemExit):
        code = evaluate.main(
            ["--cache-pairs", str(PAIRS), "--fit-cache", "--routes", str(copy), "--format", "json"]
        )
        assert code == 0
    report = json.loads(capsys.readouterr().out)
    fitted = json.loads(copy.read_text(encoding="utf-8"))["cache"]["semantic_min_similarity"]
    assert report["threshold"] == fitted == routes.cache.semantic_min_similarity
    assert report["overall"]["wrong_hits"] == 0
