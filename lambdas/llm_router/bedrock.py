"""The boto3 bedrock-runtime client the routers use, and how its failures map to HTTP.

Retries use botocore's standard retry mode (throttling and transient errors with back-off), so no
retry loop is written here. ``BEDROCK_ENDPOINT_URL`` points the client at the local Bedrock
stand-in; it is unset in AWS, where the regional endpoint is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

BEDROCK_ENDPOINT_ENV = "BEDROCK_ENDPOINT_URL"

_RETRYABLE_CODES = {
    "ThrottlingException",
    "ServiceUnavailableException",
    "ModelTimeoutException",
    "ModelNotReadyException",
}


def runtime_client(
    region: str | None = None,
    endpoint_url: str | None = None,
    max_attempts: int = 3,
    read_timeout: int = 50,
    credentials: tuple[str, str] | None = None,
) -> Any:
    """A bedrock-runtime client with standard retries and timeouts below the Lambda timeout."""
    config = Config(
        # total_max_attempts counts the first call; botocore's "max_attempts" would count retries.
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=read_timeout,
        user_agent_extra="multi-llm-router",
    )
    return boto3.client(
        "bedrock-runtime",
        region_name=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
        endpoint_url=endpoint_url or os.environ.get(BEDROCK_ENDPOINT_ENV) or None,
        config=config,
        aws_access_key_id=credentials[0] if credentials else None,
        aws_secret_access_key=credentials[1] if credentials else None,
    )


def endpoint_kind() -> str:
    """'bedrock' in AWS, 'offline-stand-in' when pointed at the local stand-in."""
    return "offline-stand-in" if os.environ.get(BEDROCK_ENDPOINT_ENV) else "bedrock"


@dataclass
class BedrockFailure(Exception):
    """A Bedrock call failed; carries what the API should tell the caller."""

    status: int
    code: str
    message: str
    model_id: str
    stage: str

    def __str__(self) -> str:
        return f"{self.stage} call to {self.model_id} failed: {self.code}: {self.message}"


def as_failure(exc: Exception, model_id: str, stage: str) -> BedrockFailure:
    """Translate a botocore exception into a BedrockFailure with the HTTP status to return.

    Throttling, timeouts and unavailability are the caller's to retry (503); everything else —
    access denied, unknown model, a request Bedrock rejects, an internal error — is a bad gateway
    (502) whose reason names the model and Bedrock's error code.
    """
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "UnknownError")
        message = str(error.get("Message") or exc)
        status = 503 if code in _RETRYABLE_CODES else 502
        return BedrockFailure(status, code, message, model_id, stage)
    if isinstance(exc, BotoCoreError):
        return BedrockFailure(503, type(exc).__name__, str(exc), model_id, stage)
    raise exc
