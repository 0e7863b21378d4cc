"""The routes configuration: one file, validated, with presets."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from llm_router.config import ConfigError, RoutesConfig, load_routes, parse_routes
from llm_router.pipeline.strategies import STRATEGIES, get_strategy


def _edited(routes: RoutesConfig, edit: Any) -> dict[str, Any]:
    raw = copy.deepcopy(dict(routes.raw))
    edit(raw)
    return raw


def test_blog_defaults(routes: RoutesConfig) -> None:
    assert routes.preset == "blog-2024"
    assert routes.category_names == ("history", "math")
    assert routes.answerer_for("history") == "anthropic.claude-3-haiku-20240307-v1:0"
    assert routes.answerer_for("math") == "anthropic.claude-3-5-sonnet-20240620-v1:0"
    assert routes.default_category == "math"
    assert routes.classifier.model_id == "amazon.titan-text-express-v1"
    assert routes.embedding.model_id == "amazon.titan-embed-text-v2:0"
    assert routes.lambda_settings.runtime == "python3.12"
    assert routes.lambda_settings.architecture == "arm64"


def test_strategies_invoke_exactly_their_models(routes: RoutesConfig) -> None:
    answerers = set(routes.answerer_model_ids())
    llm = set(get_strategy("llm-assisted").invoked_models(routes))
    semantic = set(get_strategy("semantic").invoked_models(routes))
    assert llm == answerers | {"amazon.titan-text-express-v1"}
    assert semantic == answerers | {"amazon.titan-embed-text-v2:0"}
    assert {s.stack_name for s in STRATEGIES.values()} >= {
        "LlmAssistedRouterStack", "SemanticRouterStack"}
    with pytest.raises(ValueError, match="unknown routing strategy"):
        get_strategy("nope")


def test_preset_switch_changes_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTES_PRESET", "current")
    current = load_routes()
    assert current.preset == "current"
    assert current.answerer_for("math").startswith("us.anthropic.")
    assert load_routes(preset="blog-2024").answerer_for("math").startswith("anthropic.")


def test_routes_file_env(
    tmp_path: Path, routes: RoutesConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = _edited(routes, lambda r: r["categories"]["history"].update(description="the past"))
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(raw))
    monkeypatch.setenv("ROUTES_FILE", str(path))
    assert load_routes().categories["history"].description == "the past"
    monkeypatch.setenv("ROUTES_FILE", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="does not name a file"):
        load_routes()


def test_adding_a_category_is_a_config_edit(routes: RoutesConfig) -> None:
    def add_physics(raw: dict[str, Any]) -> None:
        raw["categories"]["physics"] = {
            "description": "questions about forces, energy and matter",
            "reference_prompts": ["What is Newton's second law?"],
        }
        for preset in raw["presets"].values():
            preset["answerers"]["physics"] = "anthropic.claude-3-haiku-20240307-v1:0"

    config = parse_routes(_edited(routes, add_physics))
    assert config.category_names == ("history", "math", "physics")
    assert ("physics", "What is Newton's second law?") in config.reference_prompts()
    assert config.reference_prompts_hash() != routes.reference_prompts_hash()


@pytest.mark.parametrize("edit,message", [
    (lambda r: r.update(default_category="art"), "default_category"),
    (lambda r: r["presets"]["blog-2024"]["answerers"].pop("math"), "no answerer"),
    (lambda r: r["embedding"].update(dimensions=300), "dimensions"),
    (lambda r: r["semantic"].update(k=0), "semantic.k"),
    (lambda r: r.update(active_preset="nope"), "unknown preset"),
    (lambda r: r.pop("categories"), "missing the key"),
    (lambda r: r["lambda"].update(architecture="sparc"), "architecture"),
    (lambda r: r["api"].update(throttle_burst_limit=0), "throttle_burst_limit must be positive"),
    (lambda r: r["api"].update(throttle_rate_limit=-1), "throttle_rate_limit must be positive"),
])
def test_invalid_configuration_is_rejected(
    routes: RoutesConfig, edit: Any, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if message == "unknown preset":
        monkeypatch.delenv("ROUTES_PRESET", raising=False)  # the file's active_preset is tested
    with pytest.raises(ConfigError, match=message):
        parse_routes(_edited(routes, edit))


def test_the_tutor_copy_follows_routes_json_while_it_is_the_tutor() -> None:
    """The tutor's tests read examples/tutor/routes.json so that a user's own routes.json keeps
    them green; while routes.json is still the tutor, the two are one configuration."""
    from conftest import REPO_ROOT, TUTOR_ROUTES_FILE

    shipped = json.loads((REPO_ROOT / "routes.json").read_text())
    tutor = json.loads(TUTOR_ROUTES_FILE.read_text())
    if set(shipped["categories"]) != set(tutor["categories"]):
        pytest.skip("routes.json is a user's own configuration")
    assert shipped == tutor, "refit or edit both: cp routes.json examples/tutor/routes.json"
