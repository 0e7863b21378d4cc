"""HTTP requests and responses as plain values, and the error responses API Gateway sends itself.

The gateway pipeline works on these values rather than on ``http.server`` objects, so it can be
tested without sockets and the server module stays a thin adapter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from stacks.concurrency import THROTTLED_RETRY_AFTER_SECONDS


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # without the query string
    headers: tuple[tuple[str, str], ...] = ()  # as received: original case, repeats kept
    body: bytes = b""
    query: str = ""
    source_ip: str = "127.0.0.1"

    def header(self, name: str) -> str | None:
        """The first value of a header; names are case-insensitive, as in HTTP."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    # A streamed integration's StreamingResponse (llm_router.edge.streaming): the server writes
    # its chunks as they come, instead of ``body``.
    streaming: Any = None

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def json(self) -> object:
        return json.loads(self.body)


# The stack adds these to API Gateway's own 4XX/5XX responses so browsers can read them.
GATEWAY_RESPONSE_HEADERS = (("Access-Control-Allow-Origin", "*"),)
# The CORS preflight the stack configures on /ask (OPTIONS, no API key, a mock integration).
PREFLIGHT_HEADERS = (
    ("Access-Control-Allow-Headers", "Content-Type,X-Api-Key,Cache-Control"),
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "POST,OPTIONS"),
    ("Access-Control-Max-Age", "3600"),
)

# API Gateway's default gateway responses: status, the body's message and x-amzn-ErrorType.
MISSING_AUTHENTICATION_TOKEN = (
    403,
    "Missing Authentication Token",
    "MissingAuthenticationTokenException",
)
FORBIDDEN = (403, "Forbidden", "ForbiddenException")
THROTTLED = (429, "Too Many Requests", "TooManyRequestsException")
QUOTA_EXCEEDED = (429, "Limit Exceeded", "LimitExceededException")
BAD_REQUEST_BODY = (400, "Invalid request body", "BadRequestException")
REQUEST_TOO_LARGE = (413, "Request Too Long", "RequestTooLargeException")
INTEGRATION_FAILURE = (502, "Internal server error", "InternalServerErrorException")
# Lambda refused the invocation (reserved concurrency reached): API Gateway answers 500.
INVOCATION_THROTTLED = (500, "Internal server error", "InternalServerErrorException")
# INTEGRATION_TIMEOUT: the function has not answered within the integration timeout (29 s).
INTEGRATION_TIMEOUT = (504, "Endpoint request timed out", "InternalServerErrorException")


def protocol_error(status: int, reason: str) -> bytes:
    """The JSON body of an HTTP-level refusal (414, 431, 400, 408, 505) in the gateway's shape.

    Only the status's reason phrase, never the offending input, so nothing is echoed back.
    """
    return json.dumps({"message": reason}).encode()


def gateway_error(kind: tuple[int, str, str], request_id: str) -> HttpResponse:
    """A response API Gateway produces without calling the Lambda function."""
    status, message, error_type = kind
    extra = [("Retry-After", str(THROTTLED_RETRY_AFTER_SECONDS))] if kind == THROTTLED else []
    return HttpResponse(
        status=status,
        body=json.dumps({"message": message}).encode(),
        headers=[
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", error_type),
            *GATEWAY_RESPONSE_HEADERS,
            *extra,
        ],
    )
