"""The request pipeline of the deployed REST API, in API Gateway's order.

1. payload size (10 MB) → 413; 2. resource and method → 403 "Missing Authentication Token" for
anything not defined (API Gateway answers an undefined method the same way, never 405), and the
CORS preflight (``OPTIONS``, no key) the stack defines; any method, TRACE and CONNECT and unknown
ones included, reaches this step, so every refusal has API Gateway's JSON shape;
3. ``x-api-key`` → 403 "Forbidden"; 4. the usage plan's throttle and quota, and the stage's
method throttle → 429 (with ``Retry-After``, as the stack's THROTTLED gateway response);
5. the request model → 400 "Invalid request body"; 6. the Lambda proxy integration: an invocation
beyond the function's reserved concurrency is refused by Lambda, which API Gateway answers with a
500 "Internal server error" (the stack sizes the reservation so that step 4 trips first); errors
and malformed results are a 502 "Internal server error", and whose answer must come within the
integration timeout (``api.integration_timeout_seconds``, 29 s by default): later, the caller gets
API Gateway's 504 ``{"message": "Endpoint request timed out"}`` while the function runs on in the
background, as a Lambda invocation does after API Gateway has given up on it.

``POST /<router>/ask/stream`` goes through the same steps with the same key, plan and model; its
integration is the streamed one (``ResponseTransferMode: STREAM``): the handler's
:class:`~llm_router.edge.streaming.StreamingResponse` is written to the caller chunk by chunk as
the function produces it, under the function's own stream deadline rather than the 29 s
integration timeout.

Not emulated: stage variables, custom domain names and WAF.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from apigw_events import LocalLambdaContext
from llm_router.config import RoutesConfig
from llm_router.edge import ASK_RESOURCE, FEEDBACK_RESOURCE, STREAM_RESOURCE

from stacks.concurrency import reserved_concurrency, stage_throttle
from stacks.deployment import parse_deployment

from .messages import (
    BAD_REQUEST_BODY,
    FORBIDDEN,
    INTEGRATION_FAILURE,
    INTEGRATION_TIMEOUT,
    INVOCATION_THROTTLED,
    MISSING_AUTHENTICATION_TOKEN,
    PREFLIGHT_HEADERS,
    QUOTA_EXCEEDED,
    REQUEST_TOO_LARGE,
    THROTTLED,
    HttpRequest,
    HttpResponse,
    gateway_error,
)
from .proxy import (
    MalformedProxyResult,
    from_result,
    to_event,
)
from .request_model import RequestModel, deployed_feedback_schema, deployed_schema, request_schema
from .throttle import ReservedConcurrency, TokenBucket, UsagePlan

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
API_GATEWAY_MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
API_KEY_HEADER = "x-api-key"
HEALTH_PATH = "/health"
LOCAL_API_KEY_ID = "local-api-key"  # the default tier's key id
NO_RESERVATION = ReservedConcurrency(None)


def local_key_id(tier: str, default_tier: str | None = None) -> str:
    """The API key id the local API passes for a tier's key (the stack's is API Gateway's)."""
    return LOCAL_API_KEY_ID if tier == default_tier else f"local-api-key-{tier}"


@dataclass(frozen=True)
class TierPlan:
    """One tier's key and usage plan, as the stack creates them."""

    api_key: str
    rate_limit: float
    burst_limit: int
    quota_per_day: int | None
DEFAULT_INTEGRATION_TIMEOUT_SECONDS = 29.0  # API Gateway REST's default (and former maximum)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiSettings:
    """What the stack configures on the API, read from routes.json, plus the key to accept."""

    api_key: str
    rate_limit: float
    burst_limit: int
    max_question_chars: int
    quota_per_day: int | None = None
    max_payload_bytes: int = API_GATEWAY_MAX_PAYLOAD_BYTES
    stage: str = "prod"
    lambda_timeout_seconds: int = 60
    stream_timeout_seconds: int = 122  # the streaming function's timeout
    integration_timeout_seconds: float = DEFAULT_INTEGRATION_TIMEOUT_SECONDS
    body_schema: dict[str, Any] | None = None  # None: request_schema(max_question_chars)
    feedback_schema: dict[str, Any] | None = None  # POST /<router>/feedback's model
    # Tiers besides the default one (whose key and plan are the fields above), by tier name.
    tiers: Mapping[str, TierPlan] = field(default_factory=dict)
    default_tier: str | None = None
    # Each function's reserved concurrency (None: unlimited) and the stage's method throttle
    # (None: none), as stacks.concurrency derives them for the stack.
    reserved_concurrency: int | None = None
    stage_rate_limit: float | None = None
    stage_burst_limit: int | None = None

    @classmethod
    def from_config(cls, config: RoutesConfig, api_key: str) -> ApiSettings:
        """One key per tier, as the stack makes them: ``api_key`` for the default tier and
        ``<api_key>-<tier>`` for each other tier, each with the tier's usage plan."""
        default = config.tiers[config.default_tier]
        tiers = {
            name: TierPlan(f"{api_key}-{name}", t.throttle_rate_limit, t.throttle_burst_limit,
                           t.quota_requests_per_day)
            for name, t in config.tiers.items()
            if name != config.default_tier
        }
        deployment = parse_deployment(config.raw)
        throttle = stage_throttle(config)
        return cls(
            reserved_concurrency=reserved_concurrency(
                config, deployment.reserved_concurrency, deployment.p99_answer_seconds
            ),
            stage_rate_limit=throttle.rate,
            stage_burst_limit=throttle.burst,
            tiers=tiers,
            default_tier=config.default_tier,
            api_key=api_key,
            rate_limit=default.throttle_rate_limit,
            burst_limit=default.throttle_burst_limit,
            max_question_chars=config.api.max_question_chars,
            quota_per_day=default.quota_requests_per_day,
            lambda_timeout_seconds=config.lambda_settings.timeout_seconds,
            stream_timeout_seconds=config.stream_function_timeout_seconds,
            integration_timeout_seconds=config.api.integration_timeout_seconds,
            body_schema=deployed_schema(config),
            feedback_schema=deployed_feedback_schema(config),
        )


def local_path(router: str, resource: str = ASK_RESOURCE) -> str:
    """The local path of one of a router's resources (the deployed API has one API per router,
    the same key and usage plan for all of its resources): ``/<router><resource>``."""
    return f"/{router}{resource}"


class LocalGateway:
    """Dispatches HTTP requests to the Lambda handler of each router, as API Gateway would."""

    def __init__(
        self,
        settings: ApiSettings,
        handlers: Mapping[str, LambdaHandler],
        usage_plan: UsagePlan | None = None,
        feedback_handler: LambdaHandler | None = None,
        stream_handlers: Mapping[str, Any] | None = None,
    ) -> None:
        """``stream_handlers``: each router's ``POST /ask/stream`` handler (one with a
        ``stream`` method); by default the ``handlers`` that have one."""
        if not settings.api_key:
            raise ValueError("the local API needs an API key")
        self.settings = settings
        self._routes = {local_path(name): (name, handler) for name, handler in handlers.items()}
        self._streams: set[str] = set()  # paths whose handler answers a StreamingResponse
        streaming = stream_handlers if stream_handlers is not None else handlers
        for name, handler in streaming.items():
            stream = getattr(handler, "stream", None)
            if callable(stream):
                self._routes[local_path(name, STREAM_RESOURCE)] = (name, stream)
                self._streams.add(local_path(name, STREAM_RESOURCE))
        self._route_models: dict[str, RequestModel] = {}  # besides /ask's model
        if feedback_handler is not None and settings.feedback_schema is not None:
            feedback_model = RequestModel(settings.feedback_schema)
            for name in handlers:
                self._routes[local_path(name, FEEDBACK_RESOURCE)] = (name, feedback_handler)
                self._route_models[local_path(name, FEEDBACK_RESOURCE)] = feedback_model
        default_plan = usage_plan or UsagePlan(
            settings.rate_limit, settings.burst_limit, settings.quota_per_day
        )
        # key value -> (tier, its usage plan); the default tier's key first.
        self._keys: dict[str, tuple[str | None, UsagePlan]] = {
            settings.api_key: (settings.default_tier, default_plan),
            **{
                plan.api_key: (
                    tier, UsagePlan(plan.rate_limit, plan.burst_limit, plan.quota_per_day)
                )
                for tier, plan in settings.tiers.items()
            },
        }
        self._model = RequestModel(
            settings.body_schema or request_schema(settings.max_question_chars)
        )
        # One reservation per function (each router's, and the feedback function of its stack)
        # and one stage throttle per method, across every key.
        self._reserved = {
            path: ReservedConcurrency(settings.reserved_concurrency) for path in self._routes
        }
        self._stage_buckets = (
            {path: TokenBucket(settings.stage_rate_limit, settings.stage_burst_limit or 1)
             for path in self._routes}
            if settings.stage_rate_limit is not None
            else {}
        )

    @property
    def paths(self) -> list[str]:
        return list(self._routes)

    def too_large(self, content_length: int) -> bool:
        return content_length > self.settings.max_payload_bytes

    def dispatch(self, request: HttpRequest) -> HttpResponse:
        request_id = str(uuid.uuid4())
        if self.too_large(len(request.body)):
            return gateway_error(REQUEST_TOO_LARGE, request_id)
        path = request.path.rstrip("/") or "/"
        if path == HEALTH_PATH and request.method in ("GET", "HEAD"):
            return self._health(request_id)
        route = self._routes.get(path)
        if route is not None and request.method == "OPTIONS":
            return HttpResponse(204, b"", [*PREFLIGHT_HEADERS, ("x-amzn-RequestId", request_id)])
        if route is None or request.method != "POST":
            return gateway_error(MISSING_AUTHENTICATION_TOKEN, request_id)
        name, handler = route
        key = request.header(API_KEY_HEADER)
        match = self._match_key(key)
        if match is None:
            return gateway_error(FORBIDDEN, request_id)
        tier, usage_plan = match
        refusal = usage_plan.admit(name, key or "")
        if refusal is not None:
            return gateway_error(QUOTA_EXCEEDED if refusal == "quota" else THROTTLED, request_id)
        stage_bucket = self._stage_buckets.get(path)
        if stage_bucket is not None and not stage_bucket.try_take():
            return gateway_error(THROTTLED, request_id)
        if not self._route_models.get(path, self._model).accepts(request.body):
            return gateway_error(BAD_REQUEST_BODY, request_id)
        # Modelled for the buffered integration; a stream's execution ends when the server has
        # written it, which this pipeline does not see, so streams are not counted.
        reservation = self._reserved[path] if path not in self._streams else NO_RESERVATION
        if not reservation.try_acquire():
            log.warning("%s: reserved concurrency %s reached: Lambda throttles, API Gateway "
                        "answers 500", path, reservation.limit)
            return gateway_error(INVOCATION_THROTTLED, request_id)
        return self._integrate(
            name, handler, request, request_id, key or "", tier, reservation,
            streamed=path in self._streams,
        )

    def _match_key(self, key: str | None) -> tuple[str | None, UsagePlan] | None:
        """The tier and usage plan of a known key (compared in constant time), else None."""
        if key is None:
            return None
        found = None
        for candidate, match in self._keys.items():
            if hmac.compare_digest(key.encode(), candidate.encode()):
                found = match
        return found

    def _integrate(
        self,
        name: str,
        handler: LambdaHandler,
        request: HttpRequest,
        request_id: str,
        api_key: str,
        tier: str | None,
        reservation: ReservedConcurrency,
        streamed: bool = False,
    ) -> HttpResponse:
        event = to_event(
            request,
            request_id,
            stage=self.settings.stage,
            api_id=f"local-{name}",
            api_key=api_key,
            api_key_id=local_key_id(tier, self.settings.default_tier) if tier else LOCAL_API_KEY_ID,
            resource=STREAM_RESOURCE if streamed else ASK_RESOURCE,
        )
        if streamed:
            return self._integrate_stream(name, handler, event, request_id)
        context = LocalLambdaContext(
            function_name=f"local-{name}-router",
            timeout_seconds=self.settings.lambda_timeout_seconds,
        )
        invocation = _Invocation(handler, event, context, name, reservation.release)
        if not invocation.finished.wait(self.settings.integration_timeout_seconds):
            log.warning(
                "%s: no answer within the %g s integration timeout: 504 (the function runs on)",
                name,
                self.settings.integration_timeout_seconds,
            )
            return gateway_error(INTEGRATION_TIMEOUT, request_id)
        if invocation.failed:
            return gateway_error(INTEGRATION_FAILURE, request_id)
        try:
            return from_result(invocation.result, request_id)
        except MalformedProxyResult as exc:
            log.error("%s: malformed Lambda proxy response: %s", name, exc)
        return gateway_error(INTEGRATION_FAILURE, request_id)

    def _integrate_stream(
        self, name: str, handler: Any, event: dict[str, Any], request_id: str
    ) -> HttpResponse:
        """The streamed integration: the prelude now, the body as the server writes it."""
        context = LocalLambdaContext(
            function_name=f"local-{name}-stream",
            timeout_seconds=self.settings.stream_timeout_seconds,
        )
        try:
            streaming = handler(event, context)
        except Exception:  # the function crashed: API Gateway answers 502, the log has the trace
            log.exception("%s: the streaming handler raised", name)
            return gateway_error(INTEGRATION_FAILURE, request_id)
        headers = [(k, str(v)) for k, v in streaming.headers.items()]
        headers.append(("x-amzn-RequestId", request_id))
        return HttpResponse(streaming.status, b"", headers, streaming=streaming)

    def _health(self, request_id: str) -> HttpResponse:
        body = {"status": "ok", "routers": {path: "POST" for path in self._routes}}
        return HttpResponse(
            200,
            json.dumps(body).encode(),
            [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)],
        )


class _Invocation:
    """One Lambda invocation on its own daemon thread, so the gateway can stop waiting for it."""

    def __init__(
        self,
        handler: LambdaHandler,
        event: dict[str, Any],
        context: Any,
        name: str,
        on_return: Callable[[], None],
    ) -> None:
        self.finished = threading.Event()
        self._on_return = on_return
        self.result: Any = None
        self.failed = False
        self._call = (handler, event, context, name)
        threading.Thread(target=self._run, name=f"lambda-{name}", daemon=True).start()

    def _run(self) -> None:
        handler, event, context, name = self._call
        try:
            self.result = handler(event, context)
        except Exception:  # the function crashed: API Gateway answers 502, the log has the trace
            log.exception("%s: the Lambda handler raised", name)
            self.failed = True
        finally:
            self._on_return()  # the execution ends here, not when the gateway stops waiting
            self.finished.set()
