"""The semantic cache's safety guard: two questions may share an answer only if they state the
same facts.

A sentence embedding measures what a question is *about*, not what it *asks*: "What is 3x + 2
at x = 5?" and "What is 3x + 2 at x = 7?", "What did Apollo 11 carry?" and "What did Apollo 13
carry?", "Which planets have no moons?" and "Which planets have moons?" are near neighbours with
different answers. No similarity threshold separates them from honest paraphrases, so a semantic
hit needs the similarity *and* an equal :class:`Facts` signature, which holds exactly the parts of
a question a paraphrase keeps and a different question changes:

* **numbers**: digits (``1,000`` and ``1000`` are one number), number words, ordinals, Roman
  numerals after a name ("Super Bowl LII", "Pope John XXIII"), as a multiset;
* **formula**: the question's symbols and variables in order (``3x+2=5``: operators, brackets,
  digits, one-letter variables and the words written right next to them, such as ``sin(x)``);
* **names**: capitalised words that are not the opening function word of a sentence ("When",
  "What", "In"), all-caps words and words with inner capitals or digits, case-folded;
* **dates**: month and weekday names and era markers, in any case;
* **negation**: not, never, no, none, without, except, ``n't``; and **contrasts**: words whose
  swap flips an answer (first/last, before/after, largest/smallest, ...), as sets.

A question in which the guard finds no name may still have one written in lower case ("where
was mozart born" vs "where was chopin born"), so for it the signature also holds every content
word: such a question is served only to one with the same content words, in any order.

Hand-written because no maintained library compares two short questions for this: named-entity
recognisers (spaCy, NLTK) need models far beyond a Lambda layer's budget and are tuned for prose,
not exam questions with formulas. The rules are generic English, nothing of a category: they are
measured on the paraphrase evaluation set (``eval/cache_pairs.jsonl``, ``scripts/evaluate.py
--cache-pairs``) and tested one by one in ``tests/test_cache_guard.py``.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

from ...records import record


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        _words(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty")
    )
} | {
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80",
    "ninety": "90", "hundred": "100", "thousand": "1000", "million": "1000000",
    "billion": "1000000000", "half": "1/2", "twice": "x2", "double": "x2", "triple": "x3",
    "dozen": "12",
}
_ORDINALS = {
    word: f"#{value}"
    for value, word in enumerate(
        _words("zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh "
        "twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth "
        "twentieth")
    )
} | {"last": "#last", "penultimate": "#-2"}
_DATE_WORDS = frozenset(
    _words("january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday "
    "saturday sunday spring summer autumn winter bc bce ad ce century centuries decade "
        "millennium")
)
_NEGATIONS = frozenset(_words("not no never none nothing neither nor without except cannot"))
_CONTRASTS = frozenset(
    _words(
        "before after earliest latest early late start end began ended beginning largest smallest "
    "biggest least most maximum minimum max min highest lowest longest shortest more less "
    "greater fewer increase decrease rise fall rose fell win won lose lost victory defeat "
    "north south east west northern southern eastern western inner outer above below sum "
    "difference product quotient area perimeter volume surface radius diameter mean median "
    "mode odd even prime positive negative")
)
# Function words that open a sentence with a capital without being a name; a capitalised word in
# that position that is not here counts as a name (unknown: assumed to matter).
_OPENERS = frozenset(
    _words("a an the what when where who whom whose which why how is are was were do does did can "
    "could would should will shall may might must has have had in on at of for from by to "
    "during since after before please tell give explain describe list name define solve find "
    "calculate compute evaluate simplify determine show prove state summarise summarize "
    "i i'm we you it its it's this that these those there here if so and but or briefly "
    "approximately roughly exactly about around between within into under over as what's who's "
    "where's how's when's why's")
)
# Words a content-word comparison ignores (for questions without a visible name).
_STOPWORDS = _OPENERS | frozenset(
    _words(
        "be been being me my our your his her their them they he she us with up down out than then "
    "also just only very much many some any all each every other such own same too again one's "
    "year years date time happen happened take took place occur occurred")
)
_ROMAN = re.compile(r"^(?=[IVXLCDM]+$)M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})$")
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:'[^\W\d_]+)?|[^\s\w]", re.UNICODE)
_OPERATORS = frozenset("+-*/^=<>≤≥≠√π%()[]|!·×÷∫∑")
_SENTENCE_END = frozenset(".?!:;")


@record(frozen=True)
class Facts:
    """What a question states that a paraphrase must keep (see the module docstring)."""

    numbers: tuple[str, ...]
    formula: str
    names: frozenset[str]
    dates: frozenset[str]
    negation: frozenset[str]
    contrasts: frozenset[str]
    content: frozenset[str] | None  # only for questions in which no name was found

    def as_dict(self) -> dict[str, object]:
        return {
            "numbers": list(self.numbers),
            "formula": self.formula,
            "names": sorted(self.names),
            "dates": sorted(self.dates),
            "negation": sorted(self.negation),
            "contrasts": sorted(self.contrasts),
            "content": None if self.content is None else sorted(self.content),
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Facts:
        content = data.get("content")
        return cls(
            numbers=tuple(str(n) for n in data.get("numbers", ())),  # type: ignore[union-attr]
            formula=str(data.get("formula", "")),
            names=frozenset(data.get("names", ())),  # type: ignore[arg-type]
            dates=frozenset(data.get("dates", ())),  # type: ignore[arg-type]
            negation=frozenset(data.get("negation", ())),  # type: ignore[arg-type]
            contrasts=frozenset(data.get("contrasts", ())),  # type: ignore[arg-type]
            content=None if content is None else frozenset(content),  # type: ignore[arg-type]
        )


def _number(token: str) -> str:
    return token.replace(",", "")


def _is_variable(token: str) -> bool:
    return len(token) == 1 and token.isalpha() and token.casefold() not in ("a", "i")


def _is_symbol(token: str) -> bool:
    return bool(token) and (token[0].isdigit() or token in _OPERATORS or _is_variable(token))


def _is_roman_after_name(token: str, previous: str) -> bool:
    return bool(_ROMAN.match(token)) and previous[:1].isupper() and previous.isalpha()


def facts(question: str) -> Facts:
    """The question's :class:`Facts`."""
    text = unicodedata.normalize("NFKC", question)
    tokens = _TOKEN.findall(text)
    numbers: list[str] = []
    formula: list[str] = []
    names: set[str] = set()
    dates: set[str] = set()
    negation: set[str] = set()
    contrasts: set[str] = set()
    content: set[str] = set()
    opening = True
    for index, token in enumerate(tokens):
        lower = token.casefold()
        previous = tokens[index - 1] if index else ""
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        roman = _is_roman_after_name(token, previous)
        if token[0].isdigit():
            numbers.append(_number(token))
        elif lower in _NUMBER_WORDS:
            numbers.append(_NUMBER_WORDS[lower])
        elif lower in _ORDINALS:
            numbers.append(_ORDINALS[lower])
        elif roman:
            numbers.append(f"R{token}")
        if lower in _DATE_WORDS:
            dates.add(lower)
        if lower in _NEGATIONS or lower.endswith("n't"):
            negation.add("not")
        if lower in _CONTRASTS:
            contrasts.add(lower)
        short_word = token.isalpha() and len(token) <= 4 and lower not in _STOPWORDS
        if _is_symbol(token) or (short_word and (_is_symbol(previous) or _is_symbol(following))):
            formula.append(_number(lower) if token[0].isdigit() else lower)
        if token[0].isalpha():
            capitalised = token[:1].isupper() and not (opening and lower in _OPENERS)
            inner = len(token) > 1 and (token.isupper() or any(c.isupper() for c in token[1:]))
            if (capitalised or inner) and token != "I" and not roman:
                names.add(lower)
            if lower not in _STOPWORDS and lower not in _NUMBER_WORDS:
                content.add(lower.removesuffix("'s"))
        opening = token in _SENTENCE_END
    return Facts(
        numbers=tuple(sorted(Counter(numbers).elements())),
        formula="".join(formula),
        names=frozenset(names),
        dates=frozenset(dates),
        negation=frozenset(negation),
        contrasts=frozenset(contrasts),
        content=None if names else frozenset(content),
    )


def same_facts(a: Facts, b: Facts) -> bool:
    """Whether two questions state the same facts (the content words too when either has no
    name the guard can see)."""
    if (a.numbers, a.formula, a.names, a.dates, a.negation, a.contrasts) != (
        b.numbers, b.formula, b.names, b.dates, b.negation, b.contrasts
    ):
        return False
    if a.content is not None or b.content is not None:
        return _content(a) == _content(b)
    return True


def _content(f: Facts) -> frozenset[str]:
    # A question with capitals has no content set; its names stand in (case-folded words).
    return f.content if f.content is not None else f.names
