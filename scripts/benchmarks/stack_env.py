"""The environment the stack gives a router function, so the benchmarks measure what ships.

Why: a benchmark that writes the function's variables by hand measures a function nobody deploys
(it left the daily budget guard out, whose DynamoDB calls are on every request). Here the
variables come from the synthesized template, i.e. from the same CDK code that deploys the
function, whatever it sets today, and the resources they name are stood in for on loopback:

* a ``Ref`` to an ``AWS::DynamoDB::Table`` becomes a table with the template's key schema in
  moto's DynamoDB server (the local run's, :func:`backends.local_dynamodb`), which the function's
  own boto3 client reaches through ``AWS_ENDPOINT_URL_DYNAMODB`` (botocore's per-service
  endpoint variable), as it reaches DynamoDB in AWS without being told;
* a ``Ref`` to an ``AWS::SecretsManager::Secret`` becomes a secret in the same server, reached
  through ``AWS_ENDPOINT_URL_SECRETS_MANAGER``; any other resource the environment names fails
  the run (rather than let the function call AWS), except ids nothing calls (API keys);
* every other intrinsic is resolved as the local run resolves it (``offline_iam.templates``: an
  API key id becomes its logical id, ``Fn::Join`` is joined);
* ``TracingConfig: Active`` is reported as ``traced``: the caller passes a sampled trace header,
  as Lambda does for a sampled request.

Only what cannot exist locally is the caller's to place: paths inside the function's layers
(``SEMANTIC_INDEX_DIR`` is ``/opt/...`` in the template) and the Lambda runtime's own variables.
The templates are the local run's cached synth (``offline_iam.synthesized``). The function runs
without the local run's IAM enforcement: moto checking each call's policy is work AWS does not
do inside the function's time.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends import STANDIN_CREDENTIALS, STANDIN_REGION, local_dynamodb
from llm_router.models.bedrock import aws_client
from llm_router.pipeline.strategies import STRATEGIES
from offline_iam.templates import LocalScope, resolve

# The resources a function's environment may name that are stood in for in moto (the one server
# serves them all), with botocore's per-service endpoint variable that reaches it.
STAND_INS = {
    "AWS::DynamoDB::Table": "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS::SecretsManager::Secret": "AWS_ENDPOINT_URL_SECRETS_MANAGER",
}
# Resources named only by id (the tier keys' ids): nothing is called.
INERT_TYPES = frozenset({"AWS::ApiGateway::ApiKey"})
# Where the function's layers are mounted: such paths are the caller's to place locally.
LAYER_ROOT = "/opt/"


@dataclass(frozen=True)
class StackEnvironment:
    """A router function's variables as the stack sets them, resolved to local stand-ins."""

    variables: dict[str, str]
    traced: bool
    tables: tuple[str, ...]  # the DynamoDB tables the variables name (created in moto)
    layer_paths: tuple[str, ...]  # variables naming a path inside a layer


def synthesized_templates(preset: str | None = None) -> dict[str, dict[str, Any]]:
    """Every stack's template for routes.json (and ``preset``): the local run's cached synth
    (``offline_iam.synthesized``, a subprocess; seconds when cached, a synth otherwise)."""
    from llm_router.config import load_routes
    from offline_iam.synthesized import synthesized_templates as cached_synth

    source = load_routes(preset=preset).source_path
    if source is None:
        raise RuntimeError("the routes configuration must come from a file")
    return cached_synth(Path(source), preset)


def router_function(template: dict[str, Any]) -> dict[str, Any]:
    """The properties of the stack's router function (the one whose handler is the router's)."""
    from llm_router.edge import ROUTER_ENTRY_POINT

    found = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"]["Handler"] == ROUTER_ENTRY_POINT
    ]
    if len(found) != 1:
        raise RuntimeError(f"expected one router function in the template, found {len(found)}")
    return found[0]


def router_environment(
    strategy: str, templates: dict[str, dict[str, Any]], stack: contextlib.ExitStack
) -> StackEnvironment:
    """``strategy``'s router variables, their tables created in a moto server kept on ``stack``."""
    template = templates[STRATEGIES[strategy].stack_name]
    function = router_function(template)
    raw = function.get("Environment", {}).get("Variables", {})
    resources = template["Resources"]
    names: dict[str, str] = {}  # logical id -> the stand-in table's name
    arns: dict[str, str] = {}  # secret logical id -> the stand-in secret's ARN
    url = ""
    for logical_id in sorted(_refs(raw)):
        resource = resources.get(logical_id, {})
        kind = resource.get("Type")
        if kind in INERT_TYPES or kind is None:  # an id the function never calls, or a parameter
            continue
        if kind not in STAND_INS:
            raise RuntimeError(
                f"{logical_id} ({kind}) is named in the function's environment and has no local "
                "stand-in: the benchmark would call AWS"
            )
        started = local_dynamodb(stack)
        if started is None:
            raise RuntimeError("moto is missing: pip install -r requirements-dev.txt")
        client, url = started
        # moto keeps its resources per process, across servers: a fresh name per run.
        name = f"{logical_id}-{uuid.uuid4().hex[:8]}"
        if kind == "AWS::DynamoDB::Table":
            names[logical_id] = name
            client.create_table(
                TableName=name,
                KeySchema=resource["Properties"]["KeySchema"],
                AttributeDefinitions=resource["Properties"]["AttributeDefinitions"],
                BillingMode="PAY_PER_REQUEST",
            )
        else:  # a secret, with a generated value as Secrets Manager would generate it
            secrets = aws_client(
                "secretsmanager", endpoint_url=url, region_name=STANDIN_REGION,
                aws_access_key_id=STANDIN_CREDENTIALS[0],
                aws_secret_access_key=STANDIN_CREDENTIALS[1],
            )
            arns[logical_id] = secrets.create_secret(
                Name=name, SecretString=uuid.uuid4().hex * 2
            )["ARN"]
    scope = LocalScope(region=STANDIN_REGION, names=names)
    variables = {
        name: arns[value["Ref"]]
        if isinstance(value, dict) and value.get("Ref") in arns
        else str(resolve(value, template, scope))
        for name, value in raw.items()
    }
    if url:  # every stand-in is moto's one server
        variables.update({STAND_INS[kind]: url for kind in STAND_INS})
    return StackEnvironment(
        variables=variables,
        traced=function.get("TracingConfig", {}).get("Mode") == "Active",
        tables=tuple(names.values()),
        layer_paths=tuple(k for k, v in variables.items() if v.startswith(LAYER_ROOT)),
    )


def _refs(value: Any) -> set[str]:
    """The logical ids ``value`` refers to with ``Ref``, at any depth."""
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            return {value["Ref"]}
        return set().union(*(_refs(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value)) if value else set()
    return set()


def placed(stack_env: StackEnvironment, placement: Mapping[str, str]) -> dict[str, str]:
    """The variables with each layer path placed locally; a layer path without a place is an
    error (a new one in the stack must not silently point at /opt)."""
    unplaced = set(stack_env.layer_paths) - set(placement)
    if unplaced:
        raise RuntimeError(f"no local place for the layer paths of {sorted(unplaced)}")
    return {**stack_env.variables, **{k: placement[k] for k in stack_env.layer_paths}}


@contextlib.contextmanager
def applied(variables: Mapping[str, str]) -> Iterator[None]:
    """``variables`` in this process's environment for the block (for in-process benchmarks),
    with the stand-in's credentials for the clients that sign; restored afterwards."""
    values = {
        "AWS_ACCESS_KEY_ID": STANDIN_CREDENTIALS[0],
        "AWS_SECRET_ACCESS_KEY": STANDIN_CREDENTIALS[1],
        "AWS_DEFAULT_REGION": STANDIN_REGION,
        **variables,
    }
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
