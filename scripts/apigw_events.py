"""API Gateway REST proxy events (payload format 1.0) and a Lambda context, built locally.

The local API server and the tests call the real Lambda handler with the event API Gateway would
send, so the handler is exercised exactly as deployed. Hand-written because the AWS tools that
generate such events (SAM CLI) need Docker to invoke them.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any


def proxy_event(
    body: str | None,
    path: str = "/ask",
    method: str = "POST",
    headers: dict[str, str] | None = None,
    stage: str = "prod",
    api_key_id: str | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    headers = dict(headers or {"Content-Type": "application/json"})
    request_id = str(uuid.uuid4())
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "protocol": "HTTP/1.1",
            "accountId": "000000000000",
            "apiId": "local",
            "identity": {
                "sourceIp": source_ip,
                "apiKeyId": api_key_id,
                "userAgent": headers.get("User-Agent"),
            },
        },
        "body": body,
        "isBase64Encoded": False,
    }


@dataclass
class LocalLambdaContext:
    """The attributes of a Lambda context object that Powertools and handlers read."""

    function_name: str = "local-router"
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:local-router"
    log_group_name: str = "/aws/lambda/local-router"
    log_stream_name: str = "local"
    timeout_seconds: int = 60
    _deadline: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self._deadline = time.time() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))
