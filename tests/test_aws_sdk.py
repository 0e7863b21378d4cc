"""The runtime layer's botocore: its data holds the operations the code calls, and they work.

A client made from the trimmed data alone (botocore's loader pointed at nothing else) must serve
the budget guard, the cache and the conversations against moto, and must not know an operation
the code does not call.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.loaders import Loader

from layers.aws_sdk import (
    SdkDataContent,
    code_operations,
    load_service_model,
    services_created,
    trimmed_model,
    write_sdk_data,
)
from layers.build import link_tree

pytestmark = pytest.mark.generic  # about the code, not the routes file

REGION = "us-east-1"
CODE = Path(__file__).resolve().parents[1] / "lambdas" / "llm_router"


@pytest.fixture(scope="module")
def operations() -> dict[str, set[str]]:
    return code_operations()


@pytest.fixture(scope="module")
def trimmed(tmp_path_factory: pytest.TempPathFactory, operations: dict[str, set[str]]) -> Path:
    target = tmp_path_factory.mktemp("sdk") / "data"
    write_sdk_data(operations, target)
    return target


def session_on(data: Path) -> botocore.session.Session:
    """A botocore session that reads models from ``data`` and nowhere else."""
    session = botocore.session.Session()
    session.register_component(
        "data_loader", Loader(extra_search_paths=[str(data)], include_default_search_paths=False)
    )
    session.set_credentials("testing", "testing")
    return session


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from backends import local_dynamodb

    with contextlib.ExitStack() as stack:
        started = local_dynamodb(stack)
        assert started is not None
        yield started[1]


def test_the_scan_finds_the_clients_and_operations_of_the_request_path(
    operations: dict[str, set[str]],
) -> None:
    assert services_created(CODE.rglob("*.py")) == {"bedrock-runtime", "dynamodb", "secretsmanager"}
    assert operations["bedrock-runtime"] == {"Converse", "ConverseStream", "InvokeModel"}
    assert {"GetItem", "PutItem", "UpdateItem", "Query"} == operations["dynamodb"]
    assert operations["secretsmanager"] == {"GetSecretValue"}


def test_a_trimmed_model_keeps_what_its_operations_reach_and_no_documentation() -> None:
    model = load_service_model("dynamodb")
    cut = trimmed_model(model, ["GetItem"])
    assert list(cut["operations"]) == ["GetItem"]
    assert {"GetItemInput", "GetItemOutput", "AttributeValue", "ResourceNotFoundException"} <= set(
        cut["shapes"]
    )
    assert "PutItemInput" not in cut["shapes"]
    assert len(cut["shapes"]) < len(model["shapes"]) / 3
    assert "documentation" not in json.dumps(cut)
    assert cut["metadata"] == {
        k: v for k, v in model["metadata"].items() if k not in ("documentation",)
    }
    with pytest.raises(ValueError, match="NoSuchOperation"):
        trimmed_model(model, ["GetItem", "NoSuchOperation"])


def test_trimmed_data_makes_only_the_codes_clients_with_only_its_operations(
    trimmed: Path, operations: dict[str, set[str]]
) -> None:
    session = session_on(trimmed)
    assert set(session.get_available_services()) == set(operations)
    for service, names in operations.items():
        client = session.create_client(service, region_name=REGION)
        assert set(client.meta.service_model.operation_names) == names
    dynamodb = session.create_client("dynamodb", region_name=REGION)
    assert not hasattr(dynamodb, "scan")  # not called by the code, so not in the layer
    with pytest.raises(botocore.exceptions.UnknownServiceError):
        session.create_client("s3", region_name=REGION)


def test_the_stores_work_on_a_client_from_the_trimmed_data(trimmed: Path, moto_url: str) -> None:
    """The budget guard, the response cache and the conversation store, each through its own
    code, on a DynamoDB client that knows only the trimmed model."""
    import boto3
    from backends import create_cache_table
    from llm_router.config import load_routes
    from llm_router.governance.budget import BudgetGuard
    from llm_router.governance.conversation_store import ConversationStore
    from llm_router.pipeline.cache.store import CacheStore, Entry

    admin = boto3.client("dynamodb", endpoint_url=moto_url, region_name=REGION,
                         aws_access_key_id="testing", aws_secret_access_key="testing")
    for table, key in (("sdk-budget", "pk"), ("sdk-conversations", "conversation_id")):
        admin.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                           KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                           AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}])
    create_cache_table(admin, "sdk-cache")
    client: Any = session_on(trimmed).create_client(
        "dynamodb", region_name=REGION, endpoint_url=moto_url
    )

    guard = BudgetGuard(load_routes(), "sdk-budget", client=client)
    reservation = guard.reserve("standard", 0.01)
    assert reservation.level == "ok" and reservation.amount_usd == 0.01
    guard.settle(reservation, 0.002)
    day = admin.get_item(TableName="sdk-budget", Key={"pk": {"S": f"spend#{reservation.day}"}})
    assert float(day["Item"]["usd#stack"]["N"]) == pytest.approx(0.002)

    cache = CacheStore("sdk-cache", client=client)
    entry = Entry("an answer", "model", "target", "history", 1, 2**40, 2**40 + 1, 0.001)
    cache.put("key", entry)
    assert cache.get("key") == entry
    assert cache.candidates("partition", 5) == []

    conversations = ConversationStore(load_routes(), "sdk-conversations", client=client)
    started = conversations.append(None, "owner", "a question", "an answer", False)
    assert started is not None
    kept = conversations.load(started, "owner")
    assert [t.content for t in kept.turns] == ["a question", "an answer"]


def test_layer_content_replaces_linked_data_without_touching_the_package_cache(
    tmp_path: Path, operations: dict[str, set[str]]
) -> None:
    """The layer links its packages from the package cache: trimming must replace the links,
    never write through them."""
    import botocore

    source = Path(botocore.__file__).resolve().parent / "data"
    cached = tmp_path / "cache" / "python" / "botocore" / "data"
    cached.mkdir(parents=True)
    for name in ("endpoints.json", "partitions.json", "_retry.json",
                 "sdk-default-configuration.json"):
        (cached / name).write_bytes((source / name).read_bytes())
    for service in (*operations, "s3"):
        version = sorted((source / service).iterdir())[-1]
        link_tree(version, cached / service / version.name)
    before = {p: p.read_bytes() for p in cached.rglob("*") if p.is_file()}
    layer = tmp_path / "layer"
    link_tree(tmp_path / "cache" / "python", layer / "python")

    manifest = SdkDataContent(operations).write(layer, lambda _message: None)

    assert {p: p.read_bytes() for p in cached.rglob("*") if p.is_file()} == before
    shipped = layer / "python" / "botocore" / "data"
    assert sorted(p.name for p in shipped.iterdir() if p.is_dir()) == sorted(operations)
    assert {s: set(k["operations"]) for s, k in manifest["botocore_data"].items()} == operations
    endpoints = json.loads((shipped / "endpoints.json").read_text())
    assert set(endpoints["partitions"][0]["services"]) <= set(operations)
