"""llm_router.decision.normalize.routing_text: options, passages, whitespace and case."""

from __future__ import annotations

import pytest
from llm_router.decision.normalize import routing_text, split_options, split_passage

pytestmark = pytest.mark.generic  # holds for any valid routes file

MC = "Which of these numbers is prime?\nA) 21\nB) 23\nC) 25\nD) 27"


def test_options_are_recognised_and_follow_the_stem_without_letters() -> None:
    body, options = split_options(MC)
    assert body == "Which of these numbers is prime?"
    assert options == ["21", "23", "25", "27"]
    assert routing_text(MC) == "which of these numbers is prime? 21; 23; 25; 27"


@pytest.mark.parametrize(
    "text",
    [
        "Which is prime?\n(A) 21\n(B) 23\n(C) 25",
        "Which is prime?\na. 21\nb. 23\nc. 25",
        "Which is prime? A) 21 B) 23 C) 25",
    ],
)
def test_other_option_layouts(text: str) -> None:
    assert split_options(text) == ("Which is prime?", ["21", "23", "25"])
    assert routing_text(text).startswith("which is prime?")


def test_a_sentence_starting_with_an_initial_is_not_an_option() -> None:
    assert split_options("A. Lincoln gave which address?") == ("A. Lincoln gave which address?", [])
    assert split_options("Options:\nB) x\nC) y") == ("Options:\nB) x\nC) y", [])


def test_long_passage_puts_the_question_stem_first_and_drops_the_lead_in() -> None:
    passage = "The assembly met in the spring. " * 20
    text = (
        "This question refers to the following information.\n"
        f"{passage}\nWhat did the assembly decide?\nA) War\nB) Peace"
    )
    stem, rest = split_passage(split_options(text)[0])
    assert stem == "What did the assembly decide?"
    assert "refers to the following" not in rest
    routed = routing_text(text, max_chars=120)
    assert routed.startswith("what did the assembly decide? war; peace the assembly met")
    assert len(routed) <= 120


def test_short_multi_line_question_is_not_a_passage() -> None:
    assert split_passage("Solve:\n2x + 1 = 5") == ("Solve:\n2x + 1 = 5", "")


def test_whitespace_case_and_unicode_are_normalised() -> None:
    assert routing_text("  What   IS\t２+２ ?\n") == "what is 2+2 ?"


@pytest.mark.parametrize("text", [MC, "Plain question?", "x " * 900, "Q?\nA) 1\nB) 2", ""])
def test_idempotent_so_the_core_and_a_caller_may_both_apply_it(text: str) -> None:
    once = routing_text(text, 500)
    assert routing_text(once, 500) == once
    assert len(once) <= 500


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError):
        routing_text("q", 0)
