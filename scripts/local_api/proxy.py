"""The Lambda proxy integration: an HTTP request in as a REST proxy event, the result out as HTTP.

The event comes from :func:`apigw_events.proxy_event` (the one place the project builds payload
1.0 events), completed with what only a real request has: every header with its repeats, the query
string and the caller's API key. The deployed function sees its resource as ``/ask`` under stage
``prod``, whatever local path the router is mounted on, so the event says the same.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from apigw_events import proxy_event
from llm_router.edge import ASK_RESOURCE

from .messages import HttpRequest, HttpResponse


class MalformedProxyResult(ValueError):
    """The function returned something API Gateway cannot turn into a response (it sends 502)."""


def to_event(
    request: HttpRequest,
    request_id: str,
    stage: str,
    api_id: str,
    api_key: str,
    api_key_id: str,
    resource: str = ASK_RESOURCE,
) -> dict[str, Any]:
    """The event API Gateway would send the function for this request (to ``resource``)."""
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        headers.setdefault(name, value)  # API Gateway keeps the first of repeated headers
        multi_headers.setdefault(name, []).append(value)
    event = proxy_event(
        request.body.decode("utf-8", errors="replace") if request.body else None,
        path=resource,
        method=request.method,
        headers=headers,
        stage=stage,
        api_key_id=api_key_id,
        source_ip=request.source_ip,
    )
    event["multiValueHeaders"] = multi_headers
    pairs = parse_qsl(request.query, keep_blank_values=True)
    if pairs:
        multi_query: dict[str, list[str]] = {}
        for name, value in pairs:
            multi_query.setdefault(name, []).append(value)
        event["queryStringParameters"] = {k: v[-1] for k, v in multi_query.items()}
        event["multiValueQueryStringParameters"] = multi_query
    context = event["requestContext"]
    context.update(requestId=request_id, extendedRequestId=request_id, apiId=api_id)
    context["identity"]["apiKey"] = api_key
    return event


def from_result(result: Any, request_id: str) -> HttpResponse:
    """The HTTP response for a proxy integration result, or MalformedProxyResult."""
    if not isinstance(result, Mapping):
        raise MalformedProxyResult(f"the function returned {type(result).__name__}, not an object")
    try:
        status = int(result.get("statusCode", 200))
    except (TypeError, ValueError) as exc:
        raise MalformedProxyResult(f"statusCode {result.get('statusCode')!r}") from exc
    body = result.get("body")
    if body is None:
        payload = b""
    elif not isinstance(body, str):
        raise MalformedProxyResult("the body must be a string")
    else:
        try:
            payload = (
                base64.b64decode(body, validate=True)
                if result.get("isBase64Encoded")
                else body.encode("utf-8")
            )
        except ValueError as exc:  # bad base64, or a lone surrogate that UTF-8 cannot encode
            raise MalformedProxyResult(f"the body cannot be encoded: {exc}") from exc
    headers: list[tuple[str, str]] = []
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((name, str(v)) for v in values)
    single = result.get("headers") or {}
    seen = {name.lower() for name, _ in headers}
    headers.extend((k, str(v)) for k, v in single.items() if k.lower() not in seen)
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    headers.append(("x-amzn-RequestId", request_id))
    return HttpResponse(status=status, body=payload, headers=headers)

