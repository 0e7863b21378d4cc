"""scripts/build_index.py: building the semantic index once, reusing it only while it is right,
and failing with a message that says what to enable."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import build_index
import pytest
from conftest import TITAN_EMBED
from llm_router.config import RoutesConfig, parse_routes
from llm_router.decision.semantic_index import INDEX_FILE

pytestmark = pytest.mark.generic  # holds for any valid routes file


@pytest.fixture
def small(routes: RoutesConfig) -> RoutesConfig:
    """Three prompts a class, without the topic bank (tests/test_topic_bank.py builds with it):
    the behaviour is the same, the build takes a moment."""
    raw = copy.deepcopy(dict(routes.raw))
    for spec in raw["categories"].values():
        spec["reference_prompts"] = spec["reference_prompts"][:3]
    raw["out_of_scope"]["reference_prompts"] = raw["out_of_scope"]["reference_prompts"][:3]
    raw["out_of_scope"]["topic_bank"] = False
    return parse_routes(raw)


def build(config: RoutesConfig, directory: Path, source: str = "stand-in") -> list[str]:
    said: list[str] = []
    build_index.ensure_index(config, directory, source, progress=said.append)
    return said


def test_an_index_is_built_once_then_reused(small: RoutesConfig, tmp_path: Path) -> None:
    said = build(small, tmp_path)
    rows = 3 * len(small.categories) + 3
    assert said[0].startswith(f"building semantic index: {rows} reference prompts")
    built = (tmp_path / INDEX_FILE).stat().st_mtime_ns
    assert build(small, tmp_path) == [f"semantic index in {tmp_path} is up to date"]
    assert (tmp_path / INDEX_FILE).stat().st_mtime_ns == built


def test_a_changed_configuration_rebuilds(small: RoutesConfig, tmp_path: Path) -> None:
    build(small, tmp_path)
    raw = copy.deepcopy(dict(small.raw))
    first = next(iter(raw["categories"].values()))
    first["reference_prompts"].append(f"{first['reference_prompts'][0]} (again, reworded)")
    assert build(parse_routes(raw), tmp_path)[0].startswith(
        f"building semantic index: {3 * len(raw['categories']) + 4}"
    )


def test_a_changed_embedder_rebuilds(small: RoutesConfig, tmp_path: Path) -> None:
    """The manifest cannot see new embeddings (a new stand-in, a model update); the probe does."""
    build(small, tmp_path)
    probe_file = tmp_path / build_index.PROBE_FILE
    probe = json.loads(probe_file.read_text())
    probe["vector"][0] += 0.01  # as if the embedder now maps the probe text elsewhere
    probe_file.write_text(json.dumps(probe))
    assert build(small, tmp_path)[0].startswith("building semantic index")
    assert build(small, tmp_path) == [f"semantic index in {tmp_path} is up to date"]


def test_bedrock_without_credentials_says_what_to_configure(
    small: RoutesConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(build_index.IndexBuildError, match="no AWS credentials were found"):
        build(small, tmp_path / "index", source="bedrock")
    assert build_index.resolve_source("auto") == build_index.STANDIN_SOURCE


def test_bedrock_without_model_access_says_what_to_enable(
    small: RoutesConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_standin: Any
) -> None:
    monkeypatch.setenv("BEDROCK_ENDPOINT_URL", fresh_standin.url)  # "Bedrock" is the stand-in
    fresh_standin.inject_fault(TITAN_EMBED, "AccessDeniedException")
    with pytest.raises(build_index.IndexBuildError) as info:
        build(small, tmp_path, source="bedrock")
    message = str(info.value)
    assert "AccessDeniedException" in message
    assert f"Enable model access for {TITAN_EMBED}" in message
