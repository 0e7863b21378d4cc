"""The Lambda entry point of every router: ``llm_router.edge.handler.lambda_handler``.

One handler serves all strategies; ``ROUTER_STRATEGY`` picks the classifier. The router is built at
cold start (outside the request path). If it cannot be built — a semantic index that does not match
the configured embedding model, a broken routes file — the function logs why once and answers every
request with a 503, instead of routing wrongly or crashing.

The handler cannot throw: every event, of any type and shape, gets a JSON proxy response, with
parsing inside the error boundary. Each request runs under one deadline below API Gateway's
integration timeout (and the function's remaining time), in its caller's tier, under a request id
the response carries; Bedrock's own error messages are logged under that id and never returned.
"""

from __future__ import annotations

# isort: off
from . import init_phase  # first: the init phase runs without cyclic GC (see init_phase)
from . import ROUTER_ENTRY_POINT

# isort: on
import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from ..config import ConfigError, RoutesConfig, load_routes
from ..config.settings import TIER_KEYS_ENV
from ..errors import ERRORS, RoutingError
from ..governance.audit import audit_record
from ..governance.conversation_store import owner_scope
from ..governance.provenance import (
    FEEDBACK_SECRET_ENV,
    FeedbackTokens,
    SecretSource,
    SecretUnavailable,
)
from ..models.request_context import Deadline, RequestContext, serving
from ..observability.telemetry import TelemetrySettings, instrumented, publish, telemetry_settings
from ..pipeline.factory import build_service
from ..pipeline.service import RouterService, UnknownCategory
from ..records import record
from .http_api import (
    AskRequest,
    BadRequest,
    allowed_origins,
    api_key_id_of,
    header_of,
    json_response,
    parse_request,
    request_context_of,
    with_cors,
)

ROUTER_STRATEGY_ENV = "ROUTER_STRATEGY"
HANDLER_ENV = "_HANDLER"  # set by Lambda to the function's configured handler
LAMBDA_HANDLER = ROUTER_ENTRY_POINT
TOKENS_FROM_ENV = "from-env"
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "multi-llm-router"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MultiLlmRouter"))
# ConfigError includes semantic_index.IndexMismatch, which is not imported here: that module needs
# numpy, which only the semantic routers' layer ships.
_INIT_ERRORS = (ConfigError, ValueError, OSError)


def error_body(code: str, request_id: str | None, **details: Any) -> dict[str, Any]:
    return {**RoutingError(code, details).body(), "request_id": request_id}


@record(frozen=True)
class Reply:
    """What a request ends with, before it is serialised once into the proxy response: the
    audit record reads the body dict, so it never parses the JSON it just wrote."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] | None = None

    def response(self) -> dict[str, Any]:
        return json_response(self.status, self.body, self.headers)


def routing_error_reply(exc: RoutingError, request_id: str | None) -> Reply:
    headers = (
        {"Retry-After": str(exc.retry_after_seconds)} if exc.retry_after_seconds else None
    )
    return Reply(exc.status, {**exc.body(), "request_id": request_id}, headers)


def tier_keys_from_env() -> dict[str, str]:
    """{API key id: tier} from the stack's ROUTER_TIER_API_KEYS ({tier: key id})."""
    raw = os.environ.get(TIER_KEYS_ENV)
    if not raw:
        return {}
    try:
        by_tier = json.loads(raw)
    except json.JSONDecodeError:
        logger.error("ignoring malformed environment variable", variable=TIER_KEYS_ENV)
        return {}
    return {str(key_id): str(tier) for tier, key_id in by_tier.items()}


def request_id_of(event: Any, context: Any) -> str:
    """API Gateway's request id (what its access log shows), else the invocation's, else new."""
    request_id = request_context_of(event).get("requestId")
    if isinstance(request_id, str) and request_id:
        return request_id[:128]
    return str(getattr(context, "aws_request_id", None) or uuid.uuid4())


@record(frozen=True)
class Admitted:
    """A request the router will route: its service, parsed request and context."""

    service: RouterService
    request: AskRequest
    context: RequestContext


@record
class Seen:
    """What the handler learnt of a request before it ended, for its audit record."""

    tier: str | None = None
    question: str | None = None
    context: RequestContext | None = None


class RouterHandler:
    """A Lambda handler bound to one router; the local server creates one per strategy."""

    def __init__(
        self,
        strategy: str | None = None,
        service_factory: Callable[[], RouterService] | None = None,
        eager: bool = False,
        tier_keys: Mapping[str, str] | None = None,
        feedback_tokens: FeedbackTokens | None | str = TOKENS_FROM_ENV,
    ) -> None:
        self._strategy = strategy
        self._factory = service_factory or self._default_factory
        self._eager = eager
        self._service: RouterService | None = None
        self._init_error: str | None = None
        self._telemetry: TelemetrySettings | None = None
        self._tier_keys = dict(tier_keys) if tier_keys is not None else tier_keys_from_env()
        self._tokens = feedback_tokens
        self._secret: SecretSource | None = None
        self._handle = instrumented(self._handle_event, metrics, logger)
        if eager:
            self._prefetch_secret()
            self._ensure_service()

    def _prefetch_secret(self) -> None:
        """At init, start reading the token secret in the background (FEEDBACK_SECRET_ARN), so
        its client and round trip overlap building the router instead of the first request.
        Should it fail, the first token reads it again (:meth:`SecretSource.get`)."""
        secret_id = os.environ.get(FEEDBACK_SECRET_ENV)
        if self._tokens == TOKENS_FROM_ENV and secret_id:
            self._secret = SecretSource(secret_id)
            self._secret.prefetch()

    def _default_factory(self) -> RouterService:
        strategy = self._strategy or os.environ.get(ROUTER_STRATEGY_ENV)
        if not strategy:
            raise ConfigError(f"{ROUTER_STRATEGY_ENV} is not set")
        config: RoutesConfig = load_routes()
        return build_service(strategy, config, warm_client=self._eager)

    def _ensure_service(self) -> RouterService | None:
        if self._service is None and self._init_error is None:
            try:
                self._service = self._factory()
                self._telemetry = telemetry_settings(self._service.config)
                logger.info(
                    "router ready",
                    strategy=self._service.strategy,
                    preset=self._service.config.preset,
                )
            except _INIT_ERRORS as exc:
                self._init_error = f"{type(exc).__name__}: {exc}"
                logger.error("router refuses to serve", reason=self._init_error)
        return self._service

    @property
    def init_error(self) -> str | None:
        return self._init_error

    def tier_of(self, event: Any, config: RoutesConfig) -> str:
        """The caller's tier from the API key id API Gateway passes; unknown ids: the default."""
        key_id = api_key_id_of(event)
        tier = self._tier_keys.get(key_id) if key_id is not None else None
        return tier if tier in config.tiers else config.default_tier

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        try:
            response = self._handle(event, context)
            config = self._service.config if self._service is not None else None
            return with_cors(response, event, allowed_origins(config))
        except Exception:  # the wrappers themselves failed: still a JSON response, no trace
            logger.exception("unhandled error around the handler")
            return json_response(500, error_body("internal_error", None))

    def _handle_event(self, event: Any, context: Any) -> dict[str, Any]:
        request_id = request_id_of(event, context)
        logger.append_keys(request_id=request_id)
        started = time.perf_counter()
        seen = Seen()
        try:
            reply = self._route(event, context, request_id, seen)
        except Exception:  # the last line of defence: log it, never leak a stack trace
            logger.exception("unhandled error while routing")
            reply = Reply(500, error_body("internal_error", request_id))
        try:
            self._publish(reply, request_id, seen, time.perf_counter() - started)
        except Exception:  # telemetry must never cost the caller the answer
            logger.exception("could not publish the request's telemetry")
        return reply.response()

    def _publish(
        self,
        reply: Reply,
        request_id: str,
        seen: Seen,
        seconds: float,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """The request's one audit line and its metrics (one EMF blob, flushed on return);
        ``extra`` adds fields to the audit record (a stream's)."""
        service = self._service
        strategy = (
            service.strategy if service else self._strategy or os.environ.get(ROUTER_STRATEGY_ENV)
        )
        record = audit_record(
            request_id=request_id,
            strategy=str(strategy or "unknown"),
            tier=seen.tier,
            status=reply.status,
            body=reply.body,
            context=seen.context,
            question=seen.question,
            total_seconds=seconds,
        )
        record.update(extra or {})
        settings = self._telemetry or TelemetrySettings()
        publish(
            record, metrics, logger, settings.include_text, settings.by_tier, settings.breakdowns
        )

    def _admit(
        self,
        event: Any,
        context: Any,
        request_id: str,
        seen: Seen,
        budget_seconds: Callable[[RoutesConfig], float] | None = None,
    ) -> Reply | Admitted:
        """What /ask and /ask/stream check before routing: a router that started, a valid
        request, the caller's tier; then the request's context under its deadline (by default
        the request budget, ``budget_seconds`` of the configuration otherwise)."""
        service = self._ensure_service()
        if service is None:
            # The reason is the router's own configuration check, never a Bedrock message.
            unavailable = RoutingError("router_unavailable", {"reason": self._init_error})
            return routing_error_reply(unavailable, request_id)
        config = service.config
        try:
            request = parse_request(event, config)
        except BadRequest as exc:
            logger.info("bad request", reason=str(exc))
            return Reply(400, {**error_body("bad_request", request_id), "error": str(exc)})
        tier = seen.tier = self.tier_of(event, config)
        seen.question = request.question
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        deadline = Deadline(
            budget_seconds(config) if budget_seconds else config.request_budget_seconds,
            lambda_remaining=(lambda: remaining() / 1000) if callable(remaining) else None,
        )
        seen.context = RequestContext(
            deadline=deadline, tier=tier, request_id=request_id,
            api_key_id=api_key_id_of(event), cache_control=header_of(event, "Cache-Control"),
        )
        return Admitted(service, request, seen.context)

    def refusal(self, exc: Exception, admitted: Admitted, request_id: str) -> Reply:
        """The reply to a failure the service raised (UnknownCategory or RoutingError)."""
        if isinstance(exc, UnknownCategory):
            return Reply(
                400,
                {
                    **error_body("unknown_category", request_id),
                    "error": str(exc),
                    "valid_categories": list(admitted.service.config.category_names),
                },
            )
        if isinstance(exc, RoutingError):
            self._log_failure(exc, admitted.context)
            return routing_error_reply(exc, request_id)
        raise exc

    def _route(self, event: Any, context: Any, request_id: str, seen: Seen) -> Reply:
        admitted = self._admit(event, context, request_id, seen)
        if isinstance(admitted, Reply):
            return admitted
        tokens = self.feedback_tokens(admitted.service.config)
        with serving(admitted.context):
            try:
                body = self.ask(admitted, stream=False)
            except (UnknownCategory, RoutingError) as exc:
                return self.refusal(exc, admitted, request_id)
        self._log_attempts(admitted.context)
        self.add_feedback_token(body, tokens, admitted.context)
        return Reply(200, body)

    def feedback_tokens(self, config: RoutesConfig) -> FeedbackTokens | None:
        """The feedback tokens this router issues (FEEDBACK_SECRET_ARN; none when unset), their
        secret being read while the models work (first request only)."""
        if isinstance(self._tokens, str):
            self._tokens = FeedbackTokens.from_env(config.raw, self._secret)
        if self._tokens is not None:
            self._tokens.prefetch()
        return self._tokens

    @staticmethod
    def add_feedback_token(
        body: dict[str, Any], tokens: FeedbackTokens | None, context: RequestContext
    ) -> None:
        """Add the answer's ``feedback_token`` to its body (/ask's, or a stream's ``done``), for
        the request's key and tier; none (logged) when the secret cannot be read: the caller
        still gets the answer, only its feedback is lost."""
        if tokens is None:
            return
        with contextlib.suppress(SecretUnavailable):
            body["feedback_token"] = tokens.issue(
                str(context.request_id), context.api_key_id or "", str(context.tier)
            )

    @staticmethod
    def ask(admitted: Admitted, stream: bool) -> Any:
        """The answer (``stream``: its events): in the server-kept conversation when the router
        keeps them and the client sent no history; else the request alone or with the client's
        (untrusted) history."""
        service, request = admitted.service, admitted.request
        tier = admitted.context.tier
        if request.conversation_id or (service.conversations and not request.history):
            owner = owner_scope(admitted.context.api_key_id)
            kept = service.open_conversation(request.conversation_id, owner)
            in_conversation = (
                service.ask_stream_in_conversation if stream else service.ask_in_conversation
            )
            return in_conversation(request.question, kept, category=request.category, tier=tier)
        alone = service.ask_stream if stream else service.ask
        return alone(
            request.question, category=request.category, tier=tier, history=request.history
        )

    @staticmethod
    def _log_attempts(request_context: RequestContext) -> None:
        """Every failed call with Bedrock's own message: for the operator, never the caller."""
        for attempt in request_context.attempts:
            if attempt.result == "failed":
                logger.warning(
                    "bedrock call failed",
                    stage=attempt.stage,
                    model_id=attempt.model_id,
                    code=attempt.error_code,
                    bedrock_message=attempt.detail,
                )

    def _log_failure(self, exc: RoutingError, request_context: RequestContext) -> None:
        self._log_attempts(request_context)
        status = ERRORS[exc.code][0]
        log = logger.warning if status < 500 else logger.error
        log("request failed", code=exc.code, status=status, cause=repr(exc.__cause__)[:2000])


def is_function_handler() -> bool:
    """Whether Lambda runs this module's handler (``_HANDLER``); the streaming function imports
    the module too, for its classes, and must not build a second router at its cold start."""
    return os.environ.get(HANDLER_ENV, LAMBDA_HANDLER) == LAMBDA_HANDLER


lambda_handler = RouterHandler(eager=init_phase.IN_LAMBDA and is_function_handler())
if is_function_handler():
    init_phase.finish()
