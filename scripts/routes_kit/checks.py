"""What a routes file must fix before it routes well, without embeddings.

First the routing core's own parsers (the function's and the stacks' sections), so a file that
passes here is one the function and ``cdk synth`` accept; then what they accept but a user did
not mean: placeholders of ``routes.py new`` left in, too few reference prompts, a prompt under
two labels, an unknown ``schema_version``.

Why these counts: the semantic head is a linear classifier calibrated by cross-validation over
clusters of each label's prompts; below ``MIN_PROMPTS`` a fold has too few prompts of a category
to calibrate on (an error), and below ``RECOMMENDED_PROMPTS`` its held-out accuracy drops, so a
warning. Off-topic prompts stand for everything else the users may ask, so they need breadth:
fewer than ``RECOMMENDED_OFF_TOPIC`` is a warning.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llm_router.config import OUT_OF_SCOPE, ConfigError, RoutesConfig, parse_routes
from llm_router.config.settings import SettingsError
from llm_router.decision.conversation import parse_conversation
from llm_router.decision.normalize import routing_text
from llm_router.decision.routing_policy import parse_routing
from llm_router.edge.feedback import parse_feedback_settings
from llm_router.governance.budget import parse_budget
from llm_router.observability.telemetry import parse_telemetry

from .skeleton import PLACEHOLDER, SCHEMA_VERSION

ERROR, WARNING = "error", "warning"
MIN_PROMPTS = 10
RECOMMENDED_PROMPTS = 20
RECOMMENDED_OFF_TOPIC = 40


@dataclass(frozen=True)
class Problem:
    level: str  # ERROR or WARNING
    where: str  # the key (or prompt) it is about
    message: str

    def line(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


def parse_all(raw: Mapping[str, Any], preset: str | None = None) -> RoutesConfig:
    """The configuration as the function reads it, every optional section too; ConfigError."""
    config = parse_routes(raw, preset=preset)
    parse_routing(config)
    section_parsers: list[Callable[[Mapping[str, Any]], Any]] = [
        parse_budget, parse_conversation, parse_feedback_settings,
        lambda r: parse_telemetry(r, len(config.tiers)),
    ]
    for parse in section_parsers:
        parse(raw)
    return config


def structural_problems(raw: Mapping[str, Any]) -> tuple[RoutesConfig | None, list[Problem]]:
    """The parsed configuration (None when it does not parse) and the problems found."""
    problems: list[Problem] = []
    version = raw.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        problems.append(Problem(
            ERROR, "schema_version",
            f"{version!r} is unknown: this router reads schema_version {SCHEMA_VERSION}",
        ))
    try:
        presets = list(raw.get("presets", {})) or [None]
        configs = [parse_all(raw, preset=p) for p in presets]
    except (ConfigError, SettingsError, KeyError, TypeError, ValueError) as exc:
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        problems.append(Problem(ERROR, "routes file", what))
        return None, problems
    config = configs[0]
    problems.extend(_placeholders(raw))
    problems.extend(_counts(config))
    problems.extend(_duplicates(config))
    return config, problems


def _placeholders(raw: Mapping[str, Any], where: str = "") -> list[Problem]:
    found: list[Problem] = []
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            if key == "reference_prompts":
                continue
            found.extend(_placeholders(value, f"{where}.{key}" if where else str(key)))
    elif isinstance(raw, list):
        for i, value in enumerate(raw):
            found.extend(_placeholders(value, f"{where}[{i}]"))
    elif isinstance(raw, str) and PLACEHOLDER in raw:
        found.append(Problem(ERROR, where, f"still holds the {PLACEHOLDER} placeholder: {raw!r}"))
    return found


def _counts(config: RoutesConfig) -> list[Problem]:
    found = []
    for name, category in config.categories.items():
        n = len(category.reference_prompts)
        where = f"categories.{name}.reference_prompts"
        if n < MIN_PROMPTS:
            found.append(Problem(
                ERROR, where,
                f"{n} prompts; the semantic router needs at least {MIN_PROMPTS} per category "
                f"({RECOMMENDED_PROMPTS}-30 recommended), written as your users ask",
            ))
        elif n < RECOMMENDED_PROMPTS:
            found.append(Problem(
                WARNING, where, f"{n} prompts; {RECOMMENDED_PROMPTS} or more route more reliably",
            ))
    n = len(config.out_of_scope.reference_prompts)
    if n < RECOMMENDED_OFF_TOPIC:
        found.append(Problem(
            ERROR if n == 0 else WARNING, "out_of_scope.reference_prompts",
            f"{n} off-topic prompts; with fewer than {RECOMMENDED_OFF_TOPIC} the router cannot "
            "tell what is not yours and declines little",
        ))
    return found


def _duplicates(config: RoutesConfig) -> list[Problem]:
    labels: dict[str, list[str]] = defaultdict(list)
    for label, prompt in config.reference_prompts():
        labels[routing_text(prompt).casefold()].append(label)
    found = []
    for text, where in labels.items():
        distinct = sorted(set(where))
        if len(distinct) > 1:
            shown = ", ".join(OUT_OF_SCOPE if x == OUT_OF_SCOPE else x for x in distinct)
            found.append(Problem(ERROR, f"prompt {text!r}", f"listed under {shown}: keep one"))
        elif len(where) > 1:
            found.append(Problem(
                WARNING, f"prompt {text!r}", f"listed {len(where)} times under {where[0]}"
            ))
    return found
