"""The shipped presets: the default uses no model of the blog's (legacy) preset, and no fallback
chain shares its primary's fate.

A fallback that is the primary's own model behind an inference profile fails with it when the
model is retired or the account has no access; the chain must also name another model version or
family (Nova Lite behind Claude Haiku 4.5, Claude Sonnet 4 behind Sonnet 4.5).
"""

from __future__ import annotations

import json

import pytest
from llm_router.config import load_routes
from llm_router.config.settings import priced_model_id

from layers import REPO_ROOT

RAW = json.loads((REPO_ROOT / "routes.json").read_text(encoding="utf-8"))
BLOG = "blog-2024"  # the blog's models: Titan Text Express and Claude 3.5 Sonnet v1 are Legacy


def test_the_default_preset_is_not_the_blogs_and_shares_none_of_its_generating_models() -> None:
    default = load_routes(preset=RAW["active_preset"])
    blog = load_routes(preset=BLOG)
    assert default.preset != BLOG
    generating = {blog.classifier.model_id, *blog.answerer_model_ids()}
    used = {default.classifier.model_id, *default.answerer_model_ids()}
    assert {priced_model_id(m) for m in used}.isdisjoint(priced_model_id(m) for m in generating)


@pytest.mark.parametrize("preset", sorted(RAW["presets"]))
def test_each_category_has_a_fallback_of_another_model(preset: str) -> None:
    config = load_routes(preset=preset)
    for category in config.category_names:
        plan = config.plan_for(category)
        primaries = {priced_model_id(t.model_id) for t in plan.pool}
        others = [f for f in plan.fallbacks if priced_model_id(f) not in primaries]
        assert others, f"{preset}/{category}: every fallback is a primary's own model"


@pytest.mark.parametrize("preset", sorted(RAW["presets"]))
def test_every_model_of_every_preset_has_a_price(preset: str) -> None:
    config = load_routes(preset=preset)
    missing = [m for m in config.all_model_ids() if config.price_of(m) is None]
    assert not missing
