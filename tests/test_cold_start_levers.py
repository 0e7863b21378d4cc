"""What keeps the function's cold start lean: no client before a call needs it, one client per
timeout step, no budget module without a table, no X-Ray SDK for an invocation X-Ray does not
sample. Each import check runs in a fresh interpreter, since this process has imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from conftest import TITAN_EMBED, lambda_env, run_fresh
from llm_router.models.resilient_client import ClientPool, per_request_read_timeouts

REPO_ROOT = Path(__file__).resolve().parents[1]


def _in_lambda(task_root: Path) -> dict[str, str]:
    """An llm-assisted function's environment in Lambda, with nowhere for Bedrock calls to go."""
    return lambda_env(
        task_root,
        ROUTER_STRATEGY="llm-assisted",
        AWS_REGION="us-east-1",
        BEDROCK_ENDPOINT_URL="http://127.0.0.1:9",
    )


def test_a_pool_from_a_recipe_makes_a_client_per_timeout_step_on_first_use_only() -> None:
    """Where botocore cannot take a read timeout per call: one client per timeout step."""
    made: list[dict[str, Any]] = []

    def recipe(**kwargs: Any) -> object:
        made.append(kwargs)
        return object()

    pool = ClientPool(None, recipe, per_call_timeouts=False)
    assert made == []  # nothing at construction: the cold start pays for used clients only
    first = pool.get(5.4)
    assert pool.get(5.9) is first  # same whole-second step: reused
    answer = pool.get(20.0)
    assert answer is not first
    assert [m["read_timeout"] for m in made] == [5.0, 20.0]
    assert all(m["max_attempts"] == 1 for m in made)


def test_with_per_call_read_timeouts_the_stages_share_one_client(fresh_standin: Any) -> None:
    """Classification (5 s) and answer (20 s) share a client and its connection; each call still
    reads with its own attempt's timeout (a hung model is cut off at the shorter one)."""
    from llm_router.models.bedrock import runtime_recipe

    assert per_request_read_timeouts()  # the botocore this project pins has them
    made: list[dict[str, Any]] = []
    standin = fresh_standin
    recipe = runtime_recipe("us-east-1", standin.url, ("t", "t"))

    def counting(**kwargs: Any) -> Any:
        made.append(kwargs)
        return recipe(**kwargs)

    pool = ClientPool.from_recipe(counting)
    assert pool.get(5.4) is pool.get(20.0)
    assert pool.get(1.5) is not pool.get(5.0)  # a shorter connect timeout: its own client
    assert [(m["read_timeout"], m["connect_timeout"]) for m in made] == [(5.0, 3.0), (1.5, 1.5)]
    client = pool.get(20.0)
    standin.set_delay(TITAN_EMBED, 30)
    body = json.dumps({"inputText": "hello", "dimensions": 256, "normalize": True})
    started = time.monotonic()
    try:
        with pool.read_timeout(1.0), pytest.raises(ReadTimeoutError):
            client.invoke_model(modelId=TITAN_EMBED, body=body, contentType="application/json")
    finally:
        standin.reset()  # the delayed call answers at once
    assert time.monotonic() - started < 4  # 1 s, not the client's 5 s


def test_a_given_client_without_a_recipe_serves_every_timeout() -> None:
    client = object()
    pool = ClientPool(client)
    assert pool.get(1.0) is client and pool.get(20.0) is client


def test_building_the_router_creates_no_bedrock_client_and_no_budget_module() -> None:
    code = (
        "import sys, botocore.session\n"
        "calls = []\n"
        "real = botocore.session.Session.create_client\n"
        "botocore.session.Session.create_client = "
        "lambda self, *a, **k: calls.append(a) or real(self, *a, **k)\n"
        "from llm_router.config import load_routes\n"
        "from llm_router.pipeline.factory import build_service\n"
        "build_service('llm-assisted', load_routes())\n"
        "assert calls == [], calls\n"
        "assert 'llm_router.governance.budget' not in sys.modules\n"
        "assert 'boto3' not in sys.modules\n"
    )
    run_fresh(code, AWS_REGION="us-east-1", ROUTES_PRESET="blog-2024")


def test_an_unsampled_invocation_does_not_load_the_xray_sdk(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from llm_router.observability.tracing import subsegment\n"
        "with subsegment('classification') as span:\n"
        "    assert not span.recording\n"
        "assert not [m for m in sys.modules if m.startswith('aws_xray_sdk')]\n"
    )
    run_fresh(
        code,
        **lambda_env(tmp_path),
        _X_AMZN_TRACE_ID="Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;"
        "Sampled=0",
    )


def test_lambda_init_warms_the_one_client_the_first_request_uses(
    monkeypatch: pytest.MonkeyPatch, fresh_standin: Any
) -> None:
    """Made at init (garbage collector paused, objects frozen after): the classification call's
    client, which with per-call read timeouts is also the answer's, so the request makes none."""
    import botocore.session
    from conftest import invoke
    from llm_router.edge.handler import RouterHandler

    made: list[str] = []
    real = botocore.session.Session.create_client

    def counting(self: Any, service: str, *args: Any, **kwargs: Any) -> Any:
        made.append(service)
        return real(self, service, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "create_client", counting)
    monkeypatch.setenv("ROUTER_STRATEGY", "llm-assisted")
    monkeypatch.setenv("BEDROCK_ENDPOINT_URL", fresh_standin.url)
    handler = RouterHandler(eager=True)
    assert made == ["bedrock-runtime"]
    status, _ = invoke(handler, {"question": "What year did World War II end?"})
    assert status == 200 and made == ["bedrock-runtime"]


def test_the_init_phase_runs_without_the_collector_and_freezes_what_it_made(
    tmp_path: Path,
) -> None:
    code = (
        "import gc\n"
        "import llm_router.edge.handler as h\n"
        "assert h.lambda_handler.init_error is None, h.lambda_handler.init_error\n"
        "assert gc.isenabled() and gc.get_freeze_count() > 10_000, gc.get_freeze_count()\n"
    )
    run_fresh(code, **_in_lambda(tmp_path))
    # Outside Lambda (tests, the local server) the collector is left alone.
    run_fresh(
        "import gc, llm_router.edge.handler\nassert gc.isenabled() and not gc.get_freeze_count()\n"
    )


def test_the_init_phase_leaves_little_cyclic_garbage_behind(tmp_path: Path) -> None:
    """What freezing without a collection keeps: init's reference cycles (~600 objects here)."""
    code = (
        "import gc, sys\n"
        "import llm_router.edge.init_phase as phase\n"
        "phase.finish = lambda: None  # keep the collector paused to count what init left\n"
        "import llm_router.edge.handler\n"
        "gc.set_debug(gc.DEBUG_SAVEALL)\n"
        "found = gc.collect()\n"
        "size = sum(sys.getsizeof(o) for o in gc.garbage)\n"
        "assert found < 5_000 and size < 2_000_000, (found, size)\n"
    )
    run_fresh(code, **_in_lambda(tmp_path))


def test_the_compiled_configuration_is_routes_json_for_everything_the_function_reads(
    tmp_path: Path,
) -> None:
    """Built with the asset from routes.json: equal to it but for the reference prompts (only
    the LLM classifier's examples kept), with the same prompt hash and classifier prompt."""
    import dataclasses

    from llm_router.config import COMPILED_ROUTES_FILE, load_compiled_routes, load_routes
    from llm_router.decision.classifiers.llm import build_prompt, few_shot_examples

    from layers.function_asset import COMPILED_ROUTES_FILE as ASSET_NAME
    from layers.function_asset import compile_routes

    assert ASSET_NAME == COMPILED_ROUTES_FILE
    full = load_routes()
    assert full.source_path is not None
    path = tmp_path / COMPILED_ROUTES_FILE
    path.write_text(json.dumps(compile_routes(full.source_path)))
    compiled = load_compiled_routes(path)
    assert path.stat().st_size < full.source_path.stat().st_size / 4
    assert compiled.reference_prompts_hash() == full.reference_prompts_hash()
    assert few_shot_examples(compiled) == few_shot_examples(full)
    assert build_prompt(compiled, "Why?") == build_prompt(full, "Why?")

    def without_prompts(config: Any) -> Any:
        categories = {
            name: dataclasses.replace(c, reference_prompts=())
            for name, c in config.categories.items()
        }
        oos = dataclasses.replace(config.out_of_scope, reference_prompts=())
        return dataclasses.replace(config, categories=categories, out_of_scope=oos)

    assert without_prompts(compiled) == without_prompts(full)

    def rest(raw: Any) -> dict[str, Any]:
        return {k: v for k, v in raw.items() if k not in ("categories", "out_of_scope")}

    assert rest(compiled.raw) == rest(full.raw)


def test_the_function_asset_reads_its_compiled_configuration(tmp_path: Path) -> None:
    from importlib.util import MAGIC_NUMBER

    from llm_router.config import load_routes

    from layers.bytecode import Compiler
    from layers.function_asset import build_function_asset

    routes = load_routes()
    assert routes.source_path is not None
    host = Compiler(sys.executable, "{}.{}".format(*sys.version_info[:2]), MAGIC_NUMBER.hex())
    built = build_function_asset(routes.source_path, host.version, tmp_path, compiler=host)
    code = (
        "from llm_router.config import load_routes\n"
        "config = load_routes()\n"
        "assert config.source_path.name == 'routes.compiled.json', config.source_path\n"
        f"assert config.reference_prompts_hash() == {routes.reference_prompts_hash()!r}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ROUTES_FILE"}
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        env={**env, "PYTHONPATH": str(built.path)},
        timeout=120,
    )


def test_reference_rows_are_made_when_read(tmp_path: Path) -> None:
    from llm_router.decision.semantic_index import ReferenceRow, ReferenceRows

    labels = [{"category": "math", "prompt": f"p{i}"} for i in range(5)]
    rows = ReferenceRows(labels)
    assert len(rows) == 5 and rows._rows == [None] * 5
    assert rows[3] == ReferenceRow("math", "p3") and rows[3] is rows[3]
    assert rows._rows.count(None) == 4
    assert list(rows) == [ReferenceRow(**r) for r in labels]
    assert rows[-1] == ReferenceRow("math", "p4") and rows[1:3] == [rows[1], rows[2]]
