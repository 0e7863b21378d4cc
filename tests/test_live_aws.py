"""The live suite: deploy the three routers to a real AWS account, use them, destroy them.

Opt-in (``pytest -m aws``), never in CI, skipped without AWS credentials. It deploys the stacks
from a copy of routes.json whose history primary is a model that does not exist, so that every
history answer proves a failover in AWS, asks each router the blog's questions, checks that the
budget guard and the feedback function wrote to their tables, and destroys the stacks at the end
(``LIVE_KEEP_STACKS=1`` keeps them; ``LIVE_STACKS_DEPLOYED=1`` uses stacks already deployed from
the same file). What it costs is in docs/deploy.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llm_router.config import load_routes
from llm_router.pipeline.strategies import STRATEGIES

pytestmark = pytest.mark.aws
REPO_ROOT = Path(__file__).resolve().parents[1]
MISSING_MODEL = "anthropic.claude-does-not-exist-v1:0"  # Bedrock answers ValidationException
HISTORY = "What year did World War II end?"
MATH = "Solve the quadratic equation: 2x^2 - 5x + 3 = 0"


@pytest.fixture(scope="module", autouse=True)
def _shipped_preset() -> Iterator[None]:
    """Deploy what ships (the file's active_preset, or the ROUTES_PRESET you set), not the
    offline tests' pinned blog-2024 preset, whose legacy models a new account cannot use."""
    from conftest import USER_PRESET

    with pytest.MonkeyPatch.context() as patch:
        if USER_PRESET is None:
            patch.delenv("ROUTES_PRESET", raising=False)
        else:
            patch.setenv("ROUTES_PRESET", USER_PRESET)
        yield


def aws_session() -> Any:
    import boto3

    session = boto3.Session()
    if session.get_credentials() is None or not session.region_name:
        pytest.skip("the live suite needs AWS credentials and a region (pytest -m aws)")
    return session


def failover_routes(tmp: Path) -> Path:
    """routes.json with the history primary replaced by a missing model (its fallbacks kept)."""
    config = load_routes()
    raw = json.loads(json.dumps(config.raw))
    preset = raw["presets"][config.preset]
    category = config.default_category if "history" not in preset["answerers"] else "history"
    answerer = preset["answerers"][category]
    fallbacks = answerer["fallbacks"] if isinstance(answerer, dict) else [answerer]
    preset["answerers"][category] = {
        "pool": [{"model_id": MISSING_MODEL, "weight": 1}], "fallbacks": fallbacks
    }
    raw.setdefault("prices", {})[MISSING_MODEL] = {"input_per_1k": 0.0, "output_per_1k": 0.0}
    path = tmp / "routes.live.json"
    path.write_text(json.dumps(raw))
    return path


def cdk(*args: str, routes: Path) -> None:
    env = {**os.environ, "ROUTES_FILE": str(routes),
           "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
    subprocess.run(["npx", "cdk", *args], cwd=REPO_ROOT, env=env, check=True, timeout=3600)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Stack name -> (URL, API key, outputs, resources) of each deployed router stack."""
    session = aws_session()
    routes = failover_routes(tmp_path_factory.mktemp("live"))
    if not os.environ.get("LIVE_STACKS_DEPLOYED"):
        cdk("deploy", "--all", "--require-approval", "never", routes=routes)
    try:
        from ask import resolve_stack

        stacks = {}
        for strategy in STRATEGIES.values():
            endpoint = resolve_stack(session, strategy.stack_name)
            resources = session.client("cloudformation").describe_stack_resources(
                StackName=strategy.stack_name
            )["StackResources"]
            stacks[strategy.stack_name] = {"endpoint": endpoint, "resources": resources}
        yield stacks
    finally:
        if not os.environ.get("LIVE_KEEP_STACKS"):
            cdk("destroy", "--all", "--force", routes=routes)


def post(url: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"x-api-key": key, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def table_of(stack: dict[str, Any], logical_prefix: str) -> str:
    return next(
        r["PhysicalResourceId"] for r in stack["resources"]
        if r["ResourceType"] == "AWS::DynamoDB::Table" and logical_prefix in r["LogicalResourceId"]
    )


def test_each_router_answers_and_fails_over(deployed: dict[str, Any]) -> None:
    for name, stack in deployed.items():
        endpoint = stack["endpoint"]
        status, answer = post(endpoint.url, endpoint.api_key, {"question": MATH})
        assert status == 200, (name, answer)
        assert answer["question_classification"] == "math", (name, answer)
        status, history = post(endpoint.url, endpoint.api_key, {"question": HISTORY})
        assert status == 200, (name, history)
        assert history["routing"]["fallback_used"] is True, (name, history["routing"])
        assert history["answerer_LLM"] != MISSING_MODEL


def test_the_budget_guard_records_spend(deployed: dict[str, Any]) -> None:
    import boto3

    dynamodb = boto3.client("dynamodb")
    for name, stack in deployed.items():
        endpoint = stack["endpoint"]
        assert post(endpoint.url, endpoint.api_key, {"question": MATH})[0] == 200
        items = dynamodb.scan(TableName=table_of(stack, "Budget"))["Items"]
        assert items, f"{name}: no spend recorded"


def test_feedback_is_stored(deployed: dict[str, Any]) -> None:
    import boto3

    dynamodb = boto3.client("dynamodb")
    for name, stack in deployed.items():
        endpoint = stack["endpoint"]
        status, answer = post(endpoint.url, endpoint.api_key, {"question": MATH})
        assert status == 200, answer
        feedback_url = endpoint.url.rsplit("/ask", 1)[0] + "/feedback"
        feedback = {"request_id": answer["request_id"], "helpful": True,
                    **({"feedback_token": answer["feedback_token"]}
                       if "feedback_token" in answer else {})}
        status, stored = post(feedback_url, endpoint.api_key, feedback)
        assert status == 200, (name, stored)
        items = dynamodb.scan(TableName=table_of(stack, "Feedback"))["Items"]
        assert any(i.get("request_id", {}).get("S") == answer["request_id"] for i in items), name
