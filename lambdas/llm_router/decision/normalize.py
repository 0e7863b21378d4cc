"""The text every router classifies: the question as asked, reshaped for routing.

Only the routing input changes; the answer model still gets the question exactly as asked.
Exam-style questions defeat a sentence embedder in two ways that have nothing to do with their
topic, so :func:`routing_text` undoes both before any classifier runs:

* **Multiple-choice options** (``A) ...`` to ``D) ...``, also ``(a)``, ``A.``, ``A:`` and options
  run together on one line) are recognised by their consecutive letters. They stay in the text
  (a math question's options are numbers; a history question's, names and events), but after the
  question stem and without their letters, so the letters and the option layout do not pull
  unrelated multiple-choice questions together.
* **Long inputs** (a passage followed by the question, as in reading-comprehension exams): the
  question stem goes first and the passage follows as context, cut to ``max_chars``. An embedder
  reads a bounded prefix (MiniLM 256 tokens, Titan V2 8,192); putting the stem first means the
  part that says what is asked is always read, whatever the limit. A lead-in such as "This
  question refers to the following information." says nothing about the topic and is dropped.
* Whitespace is collapsed, Unicode is NFKC-normalised and case folded, so spacing, full-width
  characters and capitals never change a decision.

Hand-written (regular expressions over lines) because no maintained library parses exam-question
layouts; the rules are few and each is tested in ``tests/test_normalize.py``.
"""

from __future__ import annotations

import re
import unicodedata

# About 250 MiniLM WordPiece tokens of English (~4 characters a token): the stand-in embedder's
# input limit, and far inside Titan V2's. Longer routing texts add cost, not topic.
DEFAULT_MAX_CHARS = 1000
# A body longer than this, on more than one line, is read as passage + question stem.
PASSAGE_MIN_CHARS = 300
_OPTION_LINE = re.compile(r"^\s*(?:\(([a-hA-H])\)|([a-hA-H])[\).:])\s+(\S.*)$")
_INLINE_OPTION = re.compile(r"(?:^|\s)\(?([A-H])\)\s+")
_LEAD_IN = re.compile(
    r"^\s*(?:this|the following) question (?:refers|relates) to the following[^.:]*[.:]?\s*$",
    re.IGNORECASE,
)
_WHITESPACE = re.compile(r"\s+")


def _letter(match: re.Match[str]) -> str:
    return (match.group(1) or match.group(2)).upper()


def split_options(text: str) -> tuple[str, list[str]]:
    """(text without its options, the options' texts) when it ends in lettered options A, B, ...

    Options count only as a run of consecutive letters from A, at least two: a line that merely
    starts with "A." (an initial, a sentence) is left alone.
    """
    lines = text.rstrip().splitlines()
    start = len(lines)
    while start > 0 and _OPTION_LINE.match(lines[start - 1]):
        start -= 1
    matches = [_OPTION_LINE.match(line) for line in lines[start:]]
    letters = [_letter(m) for m in matches if m]
    if len(letters) >= 2 and letters == [chr(65 + n) for n in range(len(letters))]:
        return "\n".join(lines[:start]), [m.group(3).strip() for m in matches if m]
    return _split_inline_options(text)


def _split_inline_options(text: str) -> tuple[str, list[str]]:
    """Options on one line: "... ? A) 3 B) 4 C) 5 D) 6"."""
    marks = list(_INLINE_OPTION.finditer(text))
    letters = [m.group(1) for m in marks]
    for first in range(len(marks)):
        run = letters[first:]
        if run and run[0] == "A" and len(run) >= 2 and run == [
            chr(65 + n) for n in range(len(run))
        ]:
            cuts = marks[first:]
            options = [
                text[m.end() : (cuts[j + 1].start() if j + 1 < len(cuts) else len(text))].strip()
                for j, m in enumerate(cuts)
            ]
            return text[: cuts[0].start()], options
    return text, []


def split_passage(text: str) -> tuple[str, str]:
    """(question stem, passage): the last non-empty line is the stem of a long multi-line body."""
    lines = [line for line in text.splitlines() if line.strip() and not _LEAD_IN.match(line)]
    body = "\n".join(lines)
    if len(body) <= PASSAGE_MIN_CHARS or len(lines) < 2:
        return body, ""
    return lines[-1], "\n".join(lines[:-1])


def _clean(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _truncate(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return cut[:space] if space > max_chars // 2 else cut


def routing_text(question: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """The text to classify for ``question``: stem, then options, then passage; normalised.

    Deterministic and total: any string gives a string of at most ``max_chars`` characters
    (empty only for a question of whitespace). Each router's classifier receives this text.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    text = unicodedata.normalize("NFKC", question).replace("\r\n", "\n").replace("\r", "\n")
    body, options = split_options(text)
    stem, passage = split_passage(body)
    parts = [_clean(stem)]
    if options:
        parts.append("; ".join(_clean(o) for o in options))
    if passage:
        parts.append(_clean(passage))
    routed = " ".join(p for p in parts if p).casefold()
    return _truncate(_clean(routed), max_chars)


LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(text: str) -> bool:
    """True when ``text`` cannot be encoded as UTF-8 (an unpaired UTF-16 surrogate)."""
    return LONE_SURROGATE.search(text) is not None
