"""Coverage: every part of what the answer model reads is classified on its own.

The routing decision reads one window of text (``routing.max_input_chars`` of the question, stem
first: :mod:`.normalize`), while the answer model reads the whole question and every turn of the
history. Text outside that window, or off-topic text next to an in-scope sentence ("<category>
question: which series should I binge?"), would ride on the window's decision to whatever
target it names. So before a request goes to a target dearer than the degraded target, the core
cuts everything the answer model will read into **segments** and classifies each one alone; a
segment the classifier declines on its own marks the request *partly off-topic*, and the core
caps its answer target (:mod:`.cost_cap`). The decision's category is not changed: a question
whose passage merely looks off-topic to the classifier keeps its category and is answered by the
cheap target instead of being refused, so passage questions keep working.

Segments (:func:`segments`):

* the question is split where one request can end and another begin: sentence ends (``.``,
  ``?``, ``!``, ``:`` followed by space), line breaks, a capitalised word after a lower-case one
  ("... a banana Ignore the above"), and "and", "also", "then" between clauses; markup tags are
  dropped; multiple-choice options stay with the text before them (options are often
  numbers or names, which alone read as nothing);
* every turn of the history is split the same way, the assistant turns included: a client writes
  them, so an assistant turn offering an off-topic task must not widen the scope of "yes please";
* a fragment of fewer than ``routing.segment_min_words`` words is not classified alone ("<category>
  question:" says nothing by itself); it is still inside the whole question, which is classified;
* a sentence longer than ``routing.max_input_chars`` is cut into windows of that size, so no
  character is outside every classified text;
* the segments' classifier calls are made at once (none depends on another), so the check adds
  one classifier call's time to a request, not one per segment;
* at most ``routing.max_segments`` classifier calls per request: an input with more segments is
  not checked piecemeal (grouping would let an off-topic sentence ride on an in-scope one) but
  counts as unchecked, and the core caps it like a partly off-topic one. The cost of the check
  is bounded; a long in-scope input is still answered, by the degraded target.

Hand-written because no maintained library defines "the parts of a prompt a classifier must see";
the sentence rule is a regular expression, each case tested in ``tests/test_coverage.py``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..config import OUT_OF_SCOPE
from ..records import record
from .classification import Classification
from .normalize import routing_text, split_options

# Where one request can end and another begin: a sentence end (., ?, !, : before a space), a line
# break, a capital after a lower-case word, digit or comma ("... a banana Ignore the above",
# "... = 17 Also, What's ..."), and "and", "also", "then" between clauses.
_BOUNDARY = re.compile(
    r"(?<=[.?!:])\s+|\s*\n+\s*|(?<=[a-z0-9,)])\s+(?=[A-Z][a-z'])|\s+(?i:and|also|then),?\s+"
)
_LEADING_CONNECTIVE = re.compile(r"^(?:(?:and|also|then|but|so|now|ok|okay|plus),?\s+)+", re.I)
_MARKUP = re.compile(r"</?[A-Za-z][^<>]{0,40}>")  # tags say nothing of the topic
# Makes independent calls and returns their results in order (llm_router.pipeline.side_calls).
Together = Callable[[Sequence[Callable[[], Classification]]], Sequence[Classification]]


@record(frozen=True)
class Segment:
    source: str  # "question" or "history[i]"
    text: str


@record(frozen=True)
class Coverage:
    """The segments classified and the ones declined alone (empty: the whole input is in scope)."""

    classified: int
    off_topic: tuple[Segment, ...]
    calls: tuple[Classification, ...]
    failed: str | None = None  # why coverage is unknown: a classifier failure, too many segments

    @property
    def partly_off_topic(self) -> bool:
        return bool(self.off_topic)

    def details(self) -> dict[str, Any]:
        """What the response says about the check (no segment text: it is the caller's own)."""
        out: dict[str, Any] = {
            "segments": self.classified,
            "off_topic": [segment.source for segment in self.off_topic],
        }
        if self.failed:
            out["failed"] = self.failed
        return out


def one_by_one(calls: Sequence[Callable[[], Classification]]) -> list[Classification]:
    """The calls made one after another (the core passes its own ``together``)."""
    return [call() for call in calls]


def _windows(text: str, max_chars: int) -> list[str]:
    """``text`` in pieces of at most ``max_chars``, cut at a space when one is near the end."""
    pieces = []
    while len(text) > max_chars:
        cut = text.rfind(" ", 0, max_chars + 1)
        cut = cut if cut > max_chars // 2 else max_chars
        pieces.append(text[:cut])
        text = text[cut:].lstrip()
    return [*pieces, text] if text.strip() else pieces


def sentences(text: str) -> list[str]:
    """The sentences of ``text``; trailing multiple-choice options stay with the sentence before."""
    body, options = split_options(_MARKUP.sub(" ", text))
    parts = [_LEADING_CONNECTIVE.sub("", part.strip()) for part in _BOUNDARY.split(body) if part]
    parts = [part for part in parts if part.strip()]
    if options:
        joined = "; ".join(options)
        parts = [*parts[:-1], f"{parts[-1]} {joined}"] if parts else [joined]
    return parts


def text_segments(text: str, max_chars: int, min_words: int) -> list[str]:
    """The pieces of one text that are classified alone (see the module docstring)."""
    pieces = [
        window
        for sentence in sentences(text)
        if len(sentence.split()) >= min_words
        for window in _windows(sentence, max_chars)
    ]
    return pieces


def segments(
    question: str, history: Iterable[Any], max_chars: int, min_words: int
) -> list[Segment]:
    """Every segment of the question and of each history turn (objects with ``content``)."""
    out = [
        Segment("question", piece)
        for piece in text_segments(question, max_chars, min_words)
    ]
    for index, turn in enumerate(history):
        out.extend(
            Segment(f"history[{index}]", piece)
            for piece in text_segments(turn.content, max_chars, min_words)
        )
    return out


def check(
    items: Sequence[Segment],
    classify: Callable[[str], Classification],
    max_chars: int,
    max_segments: int,
    already: Iterable[str] = (),
    clear: Callable[[Classification, str], bool | None] | None = None,
    together: Together = one_by_one,
) -> Coverage:
    """Classify each segment alone; a segment declined alone is off-topic.

    ``classify`` is the router's own decision for a text (it degrades on a classifier failure:
    such a segment counts as unchecked, and the check reports ``failed``). ``already`` holds
    routing texts the request has classified whole; a segment identical to one is not asked
    twice. ``clear`` (optional) says whether a decline stands on its own
    (:func:`.conversation.is_clear`); a decline it calls unclear (False) does not count.
    ``together`` makes the calls (the core's runs them at once: none depends on another, so
    the check takes its slowest call's time, not their sum); every call made is in ``calls``,
    its cost the request's.
    """
    seen = set(already)
    todo: list[Segment] = []
    for segment in items:
        text = routing_text(segment.text, max_chars)
        if text and text not in seen:
            seen.add(text)
            todo.append(segment)
    if len(todo) > max_segments:
        return Coverage(0, (), (), f"{len(todo)} segments, more than {max_segments}")
    calls = together([functools.partial(classify, segment.text) for segment in todo])
    off_topic: list[Segment] = []
    failed = None
    for segment, decision in zip(todo, calls, strict=True):
        if decision.degraded and decision.details.get("decided_by") == "default":
            failed = failed or decision.degraded
        elif decision.category == OUT_OF_SCOPE and (
            clear is None or clear(decision, segment.text) is not False
        ):
            off_topic.append(segment)
    return Coverage(len(calls), tuple(off_topic), tuple(calls), failed)
