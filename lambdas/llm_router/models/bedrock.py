"""The boto3 bedrock-runtime client the routers use, and what its failures mean for routing.

Two kinds of client come from here. :func:`runtime_client` is a plain client with botocore's
standard retries, for scripts that call Bedrock directly (index builds, the doctor). The router
itself calls Bedrock through :mod:`llm_router.models.resilient_client`, whose clients make exactly
one
HTTP attempt each (``total_max_attempts=1``): the router retries and fails over itself, because
only it knows the request's remaining budget, and botocore's retry quota (which silently turns
retries off after a burst of failures) must not decide for it. ``BEDROCK_ENDPOINT_URL`` points
the clients at the local Bedrock stand-in; it is unset in AWS.

:func:`as_failure` classifies every error once: whether to retry the same target, whether to fail
over to the next, and which HTTP status the caller gets if nothing answers. Bedrock's free-text
message is kept for the log only; responses carry its error code.

Clients come from one botocore session (:func:`aws_client`), not from boto3: ``boto3.client`` is
that same botocore call behind boto3's session object, and importing boto3 also imports its
resource layer and s3transfer, which the function never uses (about a sixth of boto3's import
time, at every cold start). The clients are the same ``botocore.client.BedrockRuntime`` objects.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from ..records import record

BEDROCK_ENDPOINT_ENV = "BEDROCK_ENDPOINT_URL"
# Transient: worth another attempt at the same target, then failover.
RETRY_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "ModelTimeoutException",
        "ModelNotReadyException",
        "InternalServerException",
    }
)
# The target cannot serve us now or at all (quota, access, model gone, model-side error): another
# target may, so fail over without retrying this one.
FAILOVER_CODES = frozenset(
    {
        "AccessDeniedException",
        "ResourceNotFoundException",
        "ServiceQuotaExceededException",
        "ModelErrorException",
    }
)
_TRANSPORT_ERRORS = (ReadTimeoutError, ConnectTimeoutError, EndpointConnectionError,
                     ConnectionClosedError)
RECIPE_ATTRIBUTE = "_llm_router_recipe"  # how ClientPool makes siblings with other timeouts
_session: botocore.session.Session | None = None
_session_lock = threading.Lock()
MAX_POOL_CONNECTIONS = 32  # connections a client keeps open (see runtime_client)


def aws_client(service: str, **kwargs: Any) -> Any:
    """A botocore client for ``service`` from the process's one session, as ``boto3.client``
    makes it from boto3's default session: credentials are resolved once, and service models,
    endpoints and retry rules are read once for all clients. Created under a lock, since a
    session is not thread-safe (the local server builds routers from several threads)."""
    global _session
    with _session_lock:
        if _session is None:
            _session = botocore.session.get_session()
        return _session.create_client(service, **kwargs)


def runtime_client(
    region: str | None = None,
    endpoint_url: str | None = None,
    max_attempts: int = 3,
    read_timeout: float = 50,
    credentials: tuple[str, str] | None = None,
    connect_timeout: float = 5,
) -> Any:
    """A bedrock-runtime client; it remembers how it was made, so others can differ in timeout."""
    config = Config(
        # total_max_attempts counts the first call; botocore's "max_attempts" would count retries.
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        user_agent_extra="multi-llm-router",
        tcp_keepalive=True,
        # One request classifies up to routing.max_segments (12) segments at once
        # (llm_router.pipeline.side_calls.together), the local API serves many requests on one
        # client: room to keep their connections (botocore's default, 10, would drop some).
        max_pool_connections=MAX_POOL_CONNECTIONS,
    )
    client = aws_client(
        "bedrock-runtime",
        region_name=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
        endpoint_url=endpoint_url or os.environ.get(BEDROCK_ENDPOINT_ENV) or None,
        config=config,
        aws_access_key_id=credentials[0] if credentials else None,
        aws_secret_access_key=credentials[1] if credentials else None,
    )
    setattr(client, RECIPE_ATTRIBUTE, runtime_recipe(region, endpoint_url, credentials))
    return client


def runtime_recipe(
    region: str | None = None,
    endpoint_url: str | None = None,
    credentials: tuple[str, str] | None = None,
) -> Callable[..., Any]:
    """How to make bedrock-runtime clients that differ only in timeouts and attempts, without
    making one: the router's :class:`~llm_router.models.resilient_client.ClientPool` starts from
    this,
    so no client is created that no call uses (each costs milliseconds of cold start)."""
    return functools.partial(
        runtime_client, region=region, endpoint_url=endpoint_url, credentials=credentials
    )


def endpoint_kind() -> str:
    """'bedrock' in AWS, 'offline-stand-in' when pointed at the local stand-in."""
    return "offline-stand-in" if os.environ.get(BEDROCK_ENDPOINT_ENV) else "bedrock"


@record
class BedrockFailure(Exception):
    """A Bedrock call failed; carries what routing and the API need to know about it.

    ``message`` is Bedrock's (or botocore's) own text: it can name account ids, role ARNs and
    endpoint URLs, so it goes to the log and never into a response.
    """

    status: int
    code: str
    message: str
    model_id: str
    stage: str
    retry_same: bool = False
    failover: bool = False
    retry_after_seconds: float = 0.0

    def __str__(self) -> str:
        return f"{self.stage} call to {self.model_id} failed: {self.code}"


def aws_error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError (``ConditionalCheckFailedException``...)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code else None


def as_failure(exc: Exception, model_id: str, stage: str) -> BedrockFailure:
    """Translate a botocore exception into a BedrockFailure; re-raise anything else.

    Throttling, timeouts and unavailability are retried, then failed over, and are a 503 if
    nothing answers; access, quota and model errors fail over without a retry; a request Bedrock
    rejects as invalid (ValidationException) fails at once with a 502, since every target would
    reject it too.
    """
    if isinstance(exc, BedrockFailure):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "UnknownError")
        message = str(error.get("Message") or exc)
        status_code = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        retry = code in RETRY_CODES or status_code >= 500
        failover = retry or code in FAILOVER_CODES
        return BedrockFailure(503 if failover else 502, code, message, model_id, stage,
                              retry_same=retry, failover=failover)
    if isinstance(exc, _TRANSPORT_ERRORS):
        return BedrockFailure(503, type(exc).__name__, str(exc), model_id, stage,
                              retry_same=True, failover=True)
    if isinstance(exc, BotoCoreError):
        return BedrockFailure(502, type(exc).__name__, str(exc), model_id, stage)
    raise exc
