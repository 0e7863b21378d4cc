"""Where the routers' Bedrock calls go when they run on this machine: the stand-in or AWS.

``scripts/local.py`` and ``scripts/evaluate.py`` share it, so a local run and an evaluation reach
Bedrock (or the offline stand-in) the same way and build the same semantic index.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_router.config import RoutesConfig
from llm_router.models.bedrock import BEDROCK_ENDPOINT_ENV, runtime_client
from llm_router.pipeline.factory import SEMANTIC_INDEX_DIR_ENV
from llm_router.pipeline.strategies import STRATEGIES

STANDIN = "stand-in"
AWS = "aws"
STANDIN_REGION = "us-east-1"
STANDIN_CREDENTIALS = ("stand-in", "stand-in")


class StartupError(RuntimeError):
    """The local run cannot start; the message says what to do."""


@dataclass(frozen=True)
class Backend:
    """Where the routers' Bedrock calls go."""

    client: Any
    kind: str  # STANDIN or AWS
    region: str
    description: str
    standin: Any = None  # the StandInServer, for faults and delays; None for AWS

    @property
    def embedding_source(self) -> str:
        """What the semantic index's manifest records (and the routers expect)."""
        from build_index import BEDROCK_SOURCE, STANDIN_SOURCE

        return STANDIN_SOURCE if self.kind == STANDIN else BEDROCK_SOURCE


def standin_backend(
    stack: contextlib.ExitStack, answer_url: str | None, answer_model: str | None = None
) -> Backend:
    from bedrock_standin import StandInServer

    server = stack.enter_context(
        StandInServer(host="127.0.0.1", port=0, answer_url=answer_url, answer_model=answer_model)
    )
    os.environ[BEDROCK_ENDPOINT_ENV] = server.url
    client = runtime_client(
        region=STANDIN_REGION, endpoint_url=server.url, credentials=STANDIN_CREDENTIALS
    )
    answers = (
        f"answers from {answer_model or 'the first model'} at {answer_url}"
        if answer_url
        else "placeholder answers"
    )
    return Backend(
        client,
        STANDIN,
        STANDIN_REGION,
        f"local stand-in at {server.url} (offline, {answers})",
        standin=server,
    )


def aws_backend(region: str | None) -> Backend:
    import boto3

    session = boto3.Session(region_name=region)
    if session.get_credentials() is None:
        raise StartupError(
            "--bedrock aws calls Amazon Bedrock with your AWS credentials, but none were found. "
            "Configure them (aws configure, AWS_PROFILE or aws sso login), or run without "
            "--bedrock aws to use the offline stand-in."
        )
    resolved = session.region_name
    if not resolved:
        raise StartupError(
            "--bedrock aws needs a region: pass --region, set AWS_REGION or configure one for "
            "your profile (aws configure set region us-east-1)."
        )
    os.environ.pop(BEDROCK_ENDPOINT_ENV, None)
    return Backend(runtime_client(region=resolved), AWS, resolved, f"Amazon Bedrock in {resolved}")


def prepare_index(config: RoutesConfig, backend: Backend, say: Callable[[str], None]) -> Path:
    """The semantic index for this backend's embeddings, built when missing or stale."""
    from build_index import IndexBuildError, default_index_dir, ensure_index

    index_dir = default_index_dir(config, backend.embedding_source)
    if not any(s.needs_index for s in STRATEGIES.values()):
        return index_dir
    try:
        ensure_index(config, index_dir, backend.embedding_source, backend.region, say)
    except IndexBuildError as exc:
        raise StartupError(str(exc)) from exc
    os.environ[SEMANTIC_INDEX_DIR_ENV] = str(index_dir)
    return index_dir


def open_backend(
    stack: contextlib.ExitStack,
    kind: str,
    region: str | None = None,
    answer_url: str | None = None,
    answer_model: str | None = None,
) -> Backend:
    """The stand-in (started on ``stack``) or AWS, by ``kind`` (STANDIN or AWS)."""
    return aws_backend(region) if kind == AWS else standin_backend(stack, answer_url, answer_model)


LOCAL_BUDGET_TABLE = "local-router-budget"


def local_budget(stack: contextlib.ExitStack, config: RoutesConfig) -> tuple[Any, str]:
    """The daily budget guard of a local run and a line saying where its spend is counted.

    DynamoDB is moto's, served from a thread of this process on loopback (moto's
    ``ThreadedMotoServer``) rather than patched in with ``mock_aws``: patching would reach every
    boto3 client of the process, the Bedrock one of ``--bedrock aws`` included. The spend is
    forgotten on exit, and the three routers share one guard (deployed, each stack has its own).
    """
    from llm_router.governance.budget import BudgetGuard, parse_budget

    guard = BudgetGuard(config, LOCAL_BUDGET_TABLE, client=object())
    if not guard.enabled:
        return None, "Budget: off (budget.daily_usd is null and no tier has a daily_budget_usd)"
    table = local_table(stack, LOCAL_BUDGET_TABLE, "pk")
    if table is None:
        return None, "Budget: off locally (moto is missing: pip install -r requirements-dev.txt)"
    client, url = table
    settings = parse_budget(config.raw)
    limit = "no stack-wide limit" if settings.daily_usd is None else (
        f"${settings.daily_usd:,.2f} a day, cheapest targets from "
        f"{settings.soft_fraction:.0%}"
    )
    return (
        BudgetGuard(config, LOCAL_BUDGET_TABLE, client=client),
        f"Budget: {limit}; spend counted in DynamoDB by moto in this process at "
        f"{url} (forgotten on exit)",
    )


LOCAL_CONVERSATION_TABLE = "local-router-conversations"


def local_conversations(stack: contextlib.ExitStack, config: RoutesConfig) -> tuple[Any, str]:
    """The server-kept conversations of a local run (``llm_router.governance.conversation_store``)
    in a table of the local moto DynamoDB server, and a line saying so; None without moto."""
    from llm_router.governance.conversation_store import ConversationStore

    table = local_table(stack, LOCAL_CONVERSATION_TABLE, "conversation_id")
    if table is None:
        return None, "Conversations: client-sent history only (moto is missing)"
    client, url = table
    return (
        ConversationStore(config, LOCAL_CONVERSATION_TABLE, client=client),
        f"Conversations: kept in DynamoDB by moto in this process at {url} (forgotten on exit)",
    )


LOCAL_FEEDBACK_TABLE = "local-router-feedback"
LOCAL_CACHE_TABLE = "local-router-cache"
LOCAL_DYNAMODB_TIMEOUT_SECONDS = 10  # moto shares this process's CPU with the routers
# One moto server per local run (its ExitStack), shared by the budget and feedback tables.
_LOCAL_DYNAMODB: weakref.WeakKeyDictionary[contextlib.ExitStack, tuple[Any, str]] = (
    weakref.WeakKeyDictionary()
)


def local_dynamodb(
    stack: contextlib.ExitStack, own_process: bool = False
) -> tuple[Any, str] | None:
    """A DynamoDB client of moto's server and its URL; None without moto.

    Started on first use and stopped with ``stack``; later calls with the same stack share it.
    The server runs in this process, or with ``own_process`` in a child process of its own
    (:func:`moto_process`): a benchmark's DynamoDB must not share an interpreter lock with the
    Bedrock stand-in, as the two services share nothing in AWS.
    """
    if stack in _LOCAL_DYNAMODB:
        return _LOCAL_DYNAMODB[stack]
    from llm_router.governance.budget import dynamodb_client

    try:
        import moto.server  # noqa: F401 - moto is a development requirement
    except ImportError:
        return None
    if own_process:
        url = moto_process(stack)
    else:
        from moto_dynamodb import start_server

        url, stop = start_server()  # atomic conditional writes, DynamoDB's number arithmetic
        stack.callback(stop)
    client = dynamodb_client(
        endpoint_url=url,
        timeout_seconds=LOCAL_DYNAMODB_TIMEOUT_SECONDS,
        region_name=STANDIN_REGION,
        aws_access_key_id=STANDIN_CREDENTIALS[0],
        aws_secret_access_key=STANDIN_CREDENTIALS[1],
    )
    _LOCAL_DYNAMODB[stack] = (client, url)
    return client, url


_MOTO_CHILD = """
import sys
from moto_dynamodb import start_server
url, stop = start_server()
print(url, flush=True)
sys.stdin.read()  # until the parent closes it
stop()
"""


def moto_process(stack: contextlib.ExitStack) -> str:
    """moto's server (with this project's DynamoDB corrections) in a child process, stopped
    with ``stack``; its URL."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parent), *sys.path])}
    child = subprocess.Popen(
        [sys.executable, "-c", _MOTO_CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, env=env,
    )

    def stop() -> None:
        assert child.stdin is not None
        child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()

    stack.callback(stop)
    assert child.stdout is not None
    url = child.stdout.readline().strip()
    if not url.startswith("http://"):
        raise RuntimeError("moto's server did not start in its own process")
    return url


def local_table(
    stack: contextlib.ExitStack, name: str, partition_key: str
) -> tuple[Any, str] | None:
    """The local moto DynamoDB server's client and URL, with table ``name`` created in it as
    the stacks create it (:func:`create_local_table`); None without moto."""
    dynamodb = local_dynamodb(stack)
    if dynamodb is None:
        return None
    create_local_table(dynamodb[0], name, partition_key)
    return dynamodb


def create_local_table(client: Any, name: str, partition_key: str) -> None:
    """An on-demand table keyed by one string attribute, as the stacks create them."""
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": partition_key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": partition_key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


LOCAL_FEEDBACK_SECRET = "local-router-feedback-secret"
_LOCAL_TOKENS: weakref.WeakKeyDictionary[contextlib.ExitStack, Any] = weakref.WeakKeyDictionary()
_LOCAL_SECRET_ARNS: weakref.WeakKeyDictionary[contextlib.ExitStack, str] = (
    weakref.WeakKeyDictionary()
)


def local_feedback_tokens(stack: contextlib.ExitStack, config: RoutesConfig) -> Any | None:
    """The feedback tokens of a local run: signed with a fresh random secret that the stack's
    Secrets Manager secret stands for, created in the same moto server and read through the
    same code as deployed (``llm_router.governance.provenance``). None without moto."""
    if stack in _LOCAL_TOKENS:
        return _LOCAL_TOKENS[stack]
    import secrets

    from llm_router.governance.provenance import (
        FeedbackTokens,
        SecretSource,
        parse_feedback_settings,
    )
    from llm_router.models.bedrock import aws_client

    dynamodb = local_dynamodb(stack)
    if dynamodb is None:
        return None
    _, url = dynamodb
    client = aws_client(
        "secretsmanager",
        endpoint_url=url,
        region_name=STANDIN_REGION,
        aws_access_key_id=STANDIN_CREDENTIALS[0],
        aws_secret_access_key=STANDIN_CREDENTIALS[1],
    )
    arn = client.create_secret(
        Name=LOCAL_FEEDBACK_SECRET, SecretString=secrets.token_urlsafe(32)
    )["ARN"]
    _LOCAL_SECRET_ARNS[stack] = arn
    tokens = FeedbackTokens.from_source(
        SecretSource(arn, client), parse_feedback_settings(config.raw)
    )
    _LOCAL_TOKENS[stack] = tokens
    return tokens


def create_cache_table(client: Any, name: str) -> None:
    """The response cache's table as ``stacks.tables.cache_table`` creates it: ``pk`` and ``sk``
    strings, on demand, TTL on ``expires_at``."""
    from llm_router.pipeline.cache.store import TTL_ATTRIBUTE

    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )


def local_cache(stack: contextlib.ExitStack, config: RoutesConfig) -> tuple[Any, str]:
    """The response cache of a local run (shared by the routers, in moto's DynamoDB) and a line
    saying where it is; None when the configuration caches nothing or moto is missing."""
    from llm_router.pipeline.cache.response_cache import ResponseCache
    from llm_router.pipeline.cache.store import CacheStore

    if not (config.cache.enabled and config.cache.categories):
        return None, "Cache: off (routes.json cache lists no enabled category)"
    dynamodb = local_dynamodb(stack)
    if dynamodb is None:
        return None, "Cache: off locally (moto is missing: pip install -r requirements-dev.txt)"
    client, url = dynamodb
    create_cache_table(client, LOCAL_CACHE_TABLE)
    return (
        ResponseCache(config, CacheStore(LOCAL_CACHE_TABLE, client)),
        f"Cache: {', '.join(config.cache.categories)} in DynamoDB by moto at {url}, table "
        f"{LOCAL_CACHE_TABLE} (forgotten on exit; scripts/cache.py purge --table "
        f"{LOCAL_CACHE_TABLE} --endpoint-url {url} --region {STANDIN_REGION} empties it)",
    )


def local_feedback(stack: contextlib.ExitStack, config: RoutesConfig) -> tuple[Any, str]:
    """The ``POST /feedback`` handler of a local run (one for every router, one table) and a
    line saying where feedback is stored: moto's DynamoDB, shared with the budget guard. Its
    tokens are :func:`local_feedback_tokens` (pass the same to the routers)."""
    from llm_router.edge.feedback import FeedbackHandler

    table = local_table(stack, LOCAL_FEEDBACK_TABLE, "request_id")
    if table is None:
        return None, "Feedback: off locally (moto is missing: pip install -r requirements-dev.txt)"
    client, url = table
    return (
        FeedbackHandler(
            config, LOCAL_FEEDBACK_TABLE, client, tokens=local_feedback_tokens(stack, config)
        ),
        f"Feedback: POST /<router>/feedback, stored in DynamoDB by moto at {url}, table "
        f"{LOCAL_FEEDBACK_TABLE} (forgotten on exit)",
    )


def local_feedback_command(stack: contextlib.ExitStack, access: LocalAccess | None) -> str:
    """The command that lists this run's feedback, with credentials moto accepts: the operator's
    when IAM is enforced (feedback.py's Scan is the operator's, not a function's)."""
    dynamodb = local_dynamodb(stack)
    url = dynamodb[1] if dynamodb else "http://127.0.0.1:PORT"
    env = access.operator_env if access else (
        f"AWS_ACCESS_KEY_ID={STANDIN_CREDENTIALS[0]} AWS_SECRET_ACCESS_KEY={STANDIN_CREDENTIALS[1]}"
    )
    return (
        f"{env} .venv/bin/python scripts/feedback.py list --table {LOCAL_FEEDBACK_TABLE} "
        f"--endpoint-url {url} --region {STANDIN_REGION}"
    )


@dataclass(frozen=True)
class LocalAccess:
    """The clients each local function uses, signed with its synthesized role (IAM enforced)."""

    routers: dict[str, Any]  # strategy -> its router function's FunctionAccess
    streams: dict[str, Any]  # strategy -> its streaming function's (/ask/stream), the same data
    feedback: Any  # the feedback handler, on the feedback role
    operator_env: str  # the operator's credentials as environment assignments, for scripts


def local_access(
    stack: contextlib.ExitStack, config: RoutesConfig, backend: Backend, preset: str | None
) -> tuple[LocalAccess | None, str]:
    """Give every function its synthesized role and turn moto's IAM enforcement on.

    Called after every table exists (set-up runs unchecked). Without the CDK (no Node.js) the
    run goes on with IAM unchecked, and the returned line says so."""
    from llm_router.config.cache import CACHE_TABLE_ENV
    from llm_router.config.settings import BUDGET_TABLE_ENV, CONVERSATION_TABLE_ENV
    from llm_router.edge import FEEDBACK_ENTRY_POINT, ROUTER_ENTRY_POINT, STREAM_ENTRY_POINT
    from llm_router.edge.feedback import FEEDBACK_TABLE_ENV, FeedbackHandler
    from llm_router.governance.budget import BudgetGuard
    from llm_router.governance.conversation_store import ConversationStore
    from llm_router.governance.provenance import (
        FEEDBACK_SECRET_ENV,
        FeedbackTokens,
        SecretSource,
        parse_feedback_settings,
    )
    from llm_router.models.bedrock import aws_client
    from llm_router.pipeline.cache.response_cache import ResponseCache
    from llm_router.pipeline.cache.store import CacheStore
    from local_api.routers import FunctionAccess
    from offline_iam import moto_iam
    from offline_iam.local_roles import function_roles, grant_local_roles
    from offline_iam.synthesized import SynthUnavailable

    dynamodb = local_dynamodb(stack)
    if dynamodb is None or config.source_path is None:
        return None, "IAM: not enforced (moto is missing or the routes file has no path)"
    _, url = dynamodb
    tables = {
        BUDGET_TABLE_ENV: LOCAL_BUDGET_TABLE,
        FEEDBACK_TABLE_ENV: LOCAL_FEEDBACK_TABLE,
        CACHE_TABLE_ENV: LOCAL_CACHE_TABLE,
        CONVERSATION_TABLE_ENV: LOCAL_CONVERSATION_TABLE,
    }
    secret_arn = _LOCAL_SECRET_ARNS.get(stack)
    if secret_arn:  # its local name is what follows "secret:" in moto's ARN (suffix included)
        tables[FEEDBACK_SECRET_ENV] = secret_arn.split(":secret:", 1)[1]
    try:
        roles = function_roles(config.source_path, preset, STANDIN_REGION, tables)
    except SynthUnavailable as exc:
        return None, f"IAM: not enforced ({exc})"
    granted = grant_local_roles(
        roles, url, STANDIN_REGION, moto_iam.Credentials(*STANDIN_CREDENTIALS),
        backend.standin, ROUTER_ENTRY_POINT, FEEDBACK_ENTRY_POINT, STREAM_ENTRY_POINT,
    )

    def role_dynamodb(credentials: moto_iam.Credentials) -> Any:
        from llm_router.governance.budget import dynamodb_client

        return dynamodb_client(
            endpoint_url=url, timeout_seconds=LOCAL_DYNAMODB_TIMEOUT_SECONDS,
            region_name=STANDIN_REGION, **credentials.as_client_kwargs(),
        )

    guard = BudgetGuard(config, LOCAL_BUDGET_TABLE, client=object())
    caching = config.cache.enabled and bool(config.cache.categories)

    def role_tokens(credentials: moto_iam.Credentials) -> Any:
        """Feedback tokens whose secret is read with the function's role."""
        client = aws_client(
            "secretsmanager", endpoint_url=url, region_name=STANDIN_REGION,
            **credentials.as_client_kwargs(),
        )
        return FeedbackTokens.from_source(
            SecretSource(secret_arn, client), parse_feedback_settings(config.raw)
        )

    def role_access(credentials: moto_iam.Credentials) -> FunctionAccess:
        """What a function answering /ask or /ask/stream calls, on its role's clients: Bedrock
        (the stand-in's; real Bedrock, --bedrock aws, answers to your own role), the budget,
        the cache, the feedback secret and the conversations, those the run has."""
        dynamodb = role_dynamodb(credentials)
        return FunctionAccess(
            bedrock=runtime_client(
                region=STANDIN_REGION, endpoint_url=backend.standin.url,
                credentials=(credentials.access_key_id, credentials.secret_access_key),
            ) if backend.standin is not None else None,
            budget=(BudgetGuard(config, LOCAL_BUDGET_TABLE, client=dynamodb)
                    if guard.enabled else None),
            cache=(ResponseCache(config, CacheStore(LOCAL_CACHE_TABLE, dynamodb))
                   if caching else None),
            tokens=role_tokens(credentials) if secret_arn else None,
            conversations=ConversationStore(config, LOCAL_CONVERSATION_TABLE, client=dynamodb),
        )

    feedback = (
        FeedbackHandler(
            config, LOCAL_FEEDBACK_TABLE, role_dynamodb(granted.feedback),
            tokens=role_tokens(granted.feedback) if secret_arn else None,
        )
        if granted.feedback is not None else None
    )
    stack.enter_context(moto_iam.enforced())
    operator = granted.operator
    operator_env = (
        f"AWS_ACCESS_KEY_ID={operator.access_key_id} "
        f"AWS_SECRET_ACCESS_KEY={operator.secret_access_key}"
    )
    return (
        LocalAccess(
            {s: role_access(c) for s, c in granted.routers.items()},
            {s: role_access(c) for s, c in granted.streams.items()},
            feedback, operator_env,
        ),
        f"IAM: each function runs with its synthesized role ({len(roles)} roles from the CDK "
        "templates); a call its role lacks is refused (AccessDenied), as in AWS",
    )
