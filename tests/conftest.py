"""Shared fixtures: the Bedrock stand-in on loopback, real boto3 clients pointed at it, and a
semantic index built through it. Nothing here reaches AWS.

Which routes file a test reads (``routes``, ``semantic_index_dir`` and ``ROUTES_FILE``, which
``load_routes()``, the scripts and the CDK app read):

* by default, the tutor example's own copy (``examples/tutor/routes.json``): most tests check
  the tutor's categories, models and prompts, and must keep passing when a user replaces the
  ``routes.json`` in place with their own;
* in a module marked ``pytestmark = pytest.mark.generic`` (tests of the machinery, which hold for
  any valid routes file), the routes file in place: ``ROUTES_FILE`` as the session started, else
  the repository's ``routes.json``. ``scripts/setup.sh test`` also runs ``-m generic`` with
  ``ROUTES_FILE`` set to each example (``EXAMPLE_ROUTES_FILES``) that differs from it.

A module's routes file is set once for the module (``_module_routes_file``), so module-scoped
fixtures see the same file as its tests.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apigw_events import LocalLambdaContext, proxy_event
from llm_router.config import ROUTES_FILE_ENV, RoutesConfig, load_routes, parse_routes
from llm_router.decision.embeddings import TitanEmbedder
from llm_router.decision.semantic_index import build_index
from llm_router.models.bedrock import runtime_client

STANDIN_SOURCE = "offline-stand-in"
REPO_ROOT = Path(__file__).resolve().parents[1]
TUTOR_ROUTES_FILE = REPO_ROOT / "examples" / "tutor" / "routes.json"
EXAMPLE_ROUTES_FILES = tuple(sorted(REPO_ROOT.glob("examples/*/routes.json")))
ROUTES_IN_PLACE = Path(os.environ.get(ROUTES_FILE_ENV) or REPO_ROOT / "routes.json").resolve()
GENERIC = "generic"  # the marker of configuration-generic test modules (pyproject.toml)
# Until a module says otherwise, everything reads the tutor's copy (see the module docstring).
os.environ[ROUTES_FILE_ENV] = str(TUTOR_ROUTES_FILE)
# The tests run the blog-2024 preset (the shipped default is `current`): the literals below are
# its models, and its legacy models are what the doctor and failover tests need. Set at import,
# so that session fixtures, subprocesses and synths all see it; a test about the file's own
# active_preset removes it.
TEST_PRESET = "blog-2024"
USER_PRESET = os.environ.get("ROUTES_PRESET")  # what the live suite deploys (None: the file's)
os.environ["ROUTES_PRESET"] = TEST_PRESET
# The blog-2024 preset's models, written out: tests check routing against these literals.
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"
SONNET_V2 = "us.anthropic.claude-3-5-sonnet-20241022-v2:0"
TITAN_TEXT = "amazon.titan-text-express-v1"
TITAN_EMBED = "amazon.titan-embed-text-v2:0"
# The original sample's response fields, which its clients rely on (besides classifier_LLM or
# embedding_LLM, which name the classifier).
ORIGINAL_FIELDS = (
    "answer",
    "question_classification",
    "classification_time",
    "answerer_LLM",
    "answer_generation_time",
    "total_response_time",
)


@pytest.fixture(autouse=True)
def _no_real_aws(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials that work only against the stand-in, so nothing can reach real AWS (except
    the live suite, ``pytest -m aws``, which is about the real account)."""
    if request.node.get_closest_marker("aws"):
        return
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")


@pytest.fixture(scope="session")
def standin() -> Iterator[Any]:
    from bedrock_standin import StandInServer

    with StandInServer() as server:
        yield server


@pytest.fixture
def fresh_standin(standin: Any) -> Iterator[Any]:
    """The stand-in with no faults, scripts or recorded calls left from other tests."""
    standin.reset()
    yield standin
    standin.reset()


def active_routes_file() -> Path:
    """The routes file of the running module (the tutor's copy, or the one in place)."""
    return Path(os.environ[ROUTES_FILE_ENV])


@pytest.fixture(scope="module", autouse=True)
def _module_routes_file(request: pytest.FixtureRequest) -> Iterator[Path]:
    generic = request.node.get_closest_marker(GENERIC) is not None
    path = ROUTES_IN_PLACE if generic else TUTOR_ROUTES_FILE
    patch = pytest.MonkeyPatch()
    patch.setenv(ROUTES_FILE_ENV, str(path))
    if TEST_PRESET not in json.loads(path.read_text(encoding="utf-8")).get("presets", {}):
        patch.delenv("ROUTES_PRESET", raising=False)  # a user's file: its own active preset
    yield path
    patch.undo()


_CONFIGS: dict[Path, RoutesConfig] = {}
_INDEXES: dict[Path, Path] = {}


@pytest.fixture(scope="module")
def routes(_module_routes_file: Path) -> RoutesConfig:
    """The module's routes configuration (parsed once per file and session)."""
    if _module_routes_file not in _CONFIGS:
        _CONFIGS[_module_routes_file] = load_routes(_module_routes_file)
    return _CONFIGS[_module_routes_file]


@pytest.fixture(scope="session")
def tutor_routes() -> RoutesConfig:
    """The tutor example's configuration, whatever routes file is in place."""
    return load_routes(TUTOR_ROUTES_FILE)


@pytest.fixture(scope="session")
def bedrock_client(standin: Any) -> Any:
    return runtime_client(
        region="us-east-1", endpoint_url=standin.url, credentials=("testing", "testing")
    )


@pytest.fixture(scope="module")
def semantic_index_dir(
    tmp_path_factory: pytest.TempPathFactory,
    routes: RoutesConfig,
    bedrock_client: Any,
    _module_routes_file: Path,
) -> Path:
    """The module's routes file's index, built once per file and session."""
    if _module_routes_file not in _INDEXES:
        directory = tmp_path_factory.mktemp("semantic-index")
        embedder = TitanEmbedder(bedrock_client, routes.embedding)
        build_index(routes, embedder, directory, STANDIN_SOURCE)
        _INDEXES[_module_routes_file] = directory
    return _INDEXES[_module_routes_file]


def invoke(handler: Any, body: Any, raw: bool = False) -> tuple[int, dict[str, Any]]:
    """Call a Lambda handler with an API Gateway event; returns (status, parsed body)."""
    payload = body if raw else json.dumps(body)
    response = handler(proxy_event(payload), LocalLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def run_fresh(code: str, timeout: float = 120, **env: str) -> None:
    """Run ``code`` in a fresh Python process with ``llm_router`` importable, without this
    process's tracing, budget, Lambda or trace-header variables; ``env`` adds its own."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POWERTOOLS_TRACE", "BUDGET_TABLE", "AWS_LAMBDA", "_X_AMZN"))
    }
    lambdas = str(Path(__file__).resolve().parents[1] / "lambdas")
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        env={**base, "PYTHONPATH": lambdas, **env},
        timeout=timeout,
    )


def lambda_env(task_root: Path, **extra: str) -> dict[str, str]:
    """What the Lambda runtime sets for a function (``task_root``: its /var/task), and ``extra``."""
    return {"AWS_LAMBDA_FUNCTION_NAME": "router", "LAMBDA_TASK_ROOT": str(task_root), **extra}


def two_tiers(
    routes: RoutesConfig, basic: dict[str, Any], pro: dict[str, Any]
) -> RoutesConfig:
    """``routes`` with two tiers: ``basic`` (the default) and ``pro``, whose history questions
    go to SONNET_V2, each with the limits a test gives. The tier tests (local API and Lambda
    handler) build this same pair; only the limits differ."""
    raw = copy.deepcopy(dict(routes.raw))
    raw["tiers"] = {
        "default": "basic",
        "definitions": {"basic": basic, "pro": {"answerers": {"history": SONNET_V2}, **pro}},
    }
    return parse_routes(raw)


@contextlib.contextmanager
def local_dynamodb_table(table: str, key: str) -> Iterator[Any]:
    """moto's DynamoDB server on loopback, as the local run starts it (one server per run,
    shared), with one table keyed by ``key``: its client."""
    import backends

    with contextlib.ExitStack() as stack:
        started = backends.local_dynamodb(stack)
        assert started is not None
        client, _ = started
        assert backends.local_dynamodb(stack)[0] is client
        backends.create_local_table(client, table, key)
        yield client
