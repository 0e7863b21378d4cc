"""A new routes file for given categories, from a template routes file.

Why a template: the presets' model ids, the price table, API limits, resilience, budget and
alarms are not domain-specific, and a user replacing the tutor's categories should keep them
rather than retype them. What is domain-specific is reset: the categories (description and
prompts to write), every preset's answerers (each new category starts with the template's
cheapest answer plan of that preset: edit the hard categories to a dearer model), tier overrides
and response-cache entries of the old categories, the fitted thresholds (``evaluate.py --fit``
writes new ones), the answer system prompt and the decline message. Text the user must write is
marked with PLACEHOLDER, which ``routes.py check`` reports as an error until it is gone.

The template's off-topic reference prompts are kept: a router needs negatives, and writing 400 is
a chore. But some of them may be questions of the user's own domain (the tutor's include law,
medicine and coding questions): ``routes.py check`` lists those once the categories have prompts,
and ``--drop-inside`` removes them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from llm_router.config import OUT_OF_SCOPE, ConfigError, parse_routes
from llm_router.decision.routing_policy import LIKELIEST

PLACEHOLDER = "TODO"
SCHEMA_VERSION = 1


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def check_names(names: Sequence[str]) -> None:
    """ConfigError unless every name is a distinct lower-case label the router accepts."""
    if not names:
        raise ConfigError("name at least one category")
    for name in names:
        if not name or name != name.strip().lower() or not name.replace("_", "").replace(
            "-", ""
        ).isalnum():
            raise ConfigError(
                f"category names are lower-case letters, digits, '-' and '_', got {name!r}"
            )
        if name == OUT_OF_SCOPE:
            raise ConfigError(f"{OUT_OF_SCOPE!r} is reserved for off-topic questions")
    if len(set(names)) != len(names):
        raise ConfigError(f"category names repeat: {', '.join(names)}")


def skeleton(template: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """The template with ``names`` as its categories (see the module docstring)."""
    check_names(names)
    raw = copy.deepcopy(dict(template))
    raw["schema_version"] = SCHEMA_VERSION
    topics = _listed(list(names))
    for preset_name, preset in raw["presets"].items():
        cheapest = parse_routes(template, preset=preset_name).cheapest_category()
        plan = preset["answerers"][cheapest]
        preset["answerers"] = {name: copy.deepcopy(plan) for name in names}
        preset["description"] = f"{preset.get('description', preset_name)} ({PLACEHOLDER}: "
        preset["description"] += "check each category's answer model)"
    raw["categories"] = {
        name: {
            "description": f"questions about {name}: {PLACEHOLDER} list its topics, "
                           "comma-separated",
            "reference_prompts": [],
        }
        for name in names
    }
    raw["default_category"] = names[0]
    semantic = raw.setdefault("semantic", {})
    semantic["min_similarity"] = {name: 0.0 for name in names}
    semantic.pop("decline_probability", None)  # the tutor's fit; evaluate.py --fit writes one
    semantic.pop("knn_weight", None)  # likewise
    raw.setdefault("hybrid", {}).pop("min_probability", None)
    raw.setdefault("classifier", {})["prompt_intro"] = (
        f"You route questions for an assistant that answers questions about {topics}."
    )
    raw.setdefault("answering", {})["system_prompt"] = (
        f"{PLACEHOLDER}: You answer questions about {topics}. Answer concisely and correctly. "
        f"If a question is about something else, say politely that you only help with {topics}."
    )
    oos = raw.setdefault("out_of_scope", {})
    oos["decline_message"] = (
        f"{PLACEHOLDER}: I can only help with questions about {topics}, so I can't answer that."
    )
    oos.setdefault("reference_prompts", [])
    routing = raw.setdefault("routing", {})
    routing["ambiguous_to"] = LIKELIEST
    for tier in raw.get("tiers", {}).get("definitions", {}).values():
        tier.pop("answerers", None)  # overrides of the template's categories
    if isinstance(raw.get("cache"), dict):
        raw["cache"]["categories"] = {}  # cached per category, opt-in: none until you list yours
    raw["prompt_router_targets"] = {}
    return raw
