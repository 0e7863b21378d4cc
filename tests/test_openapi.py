"""docs/openapi.json: generated from routes.json, valid OpenAPI 3, and its request schema is the one
API Gateway validates against (the same dict the stack and the local API use)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from conftest import TUTOR_ROUTES_FILE
from jsonschema import Draft4Validator
from llm_router.config import ROUTES_FILE_ENV, RoutesConfig
from openapi import DOCUMENT, build_document, main, render
from openapi_spec_validator import validate

from stacks.request_schemas import ask_body_schema, feedback_body_schema

pytestmark = pytest.mark.generic  # holds for any valid routes file


@pytest.fixture(scope="module")
def document(routes: RoutesConfig) -> dict[str, Any]:
    return build_document(routes)


def test_committed_document_is_the_generated_one(
    tutor_routes: RoutesConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/openapi.json documents the shipped tutor example (a user regenerates it for theirs)."""
    monkeypatch.setenv(ROUTES_FILE_ENV, os.environ[ROUTES_FILE_ENV])  # --routes sets it
    assert DOCUMENT.read_text(encoding="utf-8") == render(tutor_routes), (
        "docs/openapi.json is stale: run python scripts/openapi.py"
    )
    assert main(["--check", "--routes", str(TUTOR_ROUTES_FILE)]) == 0


def test_check_notices_a_stale_file(tmp_path: Any) -> None:
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n")
    assert main(["--check", "--output", str(stale)]) == 1


def test_document_validates_as_openapi_3(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.0")


def test_request_schema_is_the_api_gateway_model(
    document: dict[str, Any], routes: RoutesConfig
) -> None:
    ask = document["paths"]["/ask"]["post"]
    ref = ask["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    model = ask_body_schema(routes)
    assert schema == {k: v for k, v in model.items() if k != "$schema"}
    feedback = document["paths"]["/feedback"]["post"]["requestBody"]["content"]
    ref = feedback["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert document["components"]["schemas"][ref] == {
        k: v for k, v in feedback_body_schema(routes).items() if k != "$schema"
    }
    limit = routes.api.max_question_chars
    validator = Draft4Validator(schema)
    assert validator.is_valid({"question": "x" * limit, "category": "math"})
    assert not validator.is_valid({"question": "x" * (limit + 1)})
    assert not validator.is_valid({"question": "q", "extra": 1})


def test_api_key_and_error_shapes(document: dict[str, Any]) -> None:
    ask = document["paths"]["/ask"]["post"]
    scheme = document["components"]["securitySchemes"]["apiKey"]
    assert (scheme["in"], scheme["name"]) == ("header", "x-api-key")
    assert ask["security"] == [{"apiKey": []}]
    assert {"200", "400", "403", "429", "502", "503", "504"} <= set(ask["responses"])
    assert json.dumps(document).count("GatewayError") > 1
