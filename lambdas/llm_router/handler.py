"""The Lambda entry point of every router: ``llm_router.handler.lambda_handler``.

One handler serves all strategies; ``ROUTER_STRATEGY`` picks the classifier. The router is built at
cold start (outside the request path). If it cannot be built — a semantic index that does not match
the configured embedding model, a broken routes file — the function logs why once and answers every
request with a 503 that carries the reason, instead of routing wrongly or crashing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from .bedrock import BedrockFailure
from .config import ConfigError, RoutesConfig, load_routes
from .factory import build_service
from .http_api import BadRequest, error_response, json_response, parse_request
from .service import RouterService, UnknownCategory

ROUTER_STRATEGY_ENV = "ROUTER_STRATEGY"
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "multi-llm-router"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MultiLlmRouter"))
# ConfigError includes semantic_index.IndexMismatch, which is not imported here: that module needs
# numpy, which only the semantic routers' layer ships.
_INIT_ERRORS = (ConfigError, ValueError, OSError)


class RouterHandler:
    """A Lambda handler bound to one router; the local server creates one per strategy."""

    def __init__(
        self,
        strategy: str | None = None,
        service_factory: Callable[[], RouterService] | None = None,
        eager: bool = False,
    ) -> None:
        self._strategy = strategy
        self._factory = service_factory or self._default_factory
        self._service: RouterService | None = None
        self._init_error: str | None = None
        self._handle = logger.inject_lambda_context(clear_state=True)(
            metrics.log_metrics(self._handle_event)
        )
        if eager:
            self._ensure_service()

    def _default_factory(self) -> RouterService:
        strategy = self._strategy or os.environ.get(ROUTER_STRATEGY_ENV)
        if not strategy:
            raise ConfigError(f"{ROUTER_STRATEGY_ENV} is not set")
        config: RoutesConfig = load_routes()
        return build_service(strategy, config)

    def _ensure_service(self) -> RouterService | None:
        if self._service is None and self._init_error is None:
            try:
                self._service = self._factory()
                logger.info(
                    "router ready",
                    strategy=self._service.strategy,
                    preset=self._service.config.preset,
                )
            except _INIT_ERRORS as exc:
                self._init_error = f"{type(exc).__name__}: {exc}"
                logger.error("router refuses to serve", reason=self._init_error)
        return self._service

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        return self._handle(event, context)

    def _handle_event(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        service = self._ensure_service()
        if service is None:
            return error_response(503, "router unavailable", reason=self._init_error)
        try:
            request = parse_request(event, service.config)
        except BadRequest as exc:
            logger.info("bad request", reason=str(exc))
            return error_response(400, str(exc))
        try:
            body = service.ask(request.question, request.category)
        except UnknownCategory as exc:
            return error_response(
                400, str(exc), valid_categories=list(service.config.category_names)
            )
        except BedrockFailure as failure:
            logger.warning(
                "bedrock call failed",
                stage=failure.stage,
                model_id=failure.model_id,
                code=failure.code,
                status=failure.status,
            )
            metrics.add_metric(name="BedrockFailures", unit=MetricUnit.Count, value=1)
            return error_response(
                failure.status,
                f"Bedrock {failure.stage} failed",
                reason=f"{failure.code}: {failure.message}",
                model_id=failure.model_id,
                bedrock_error=failure.code,
            )
        except Exception:  # the last line of defence: log it, never leak a stack trace
            logger.exception("unhandled error while routing")
            return error_response(500, "internal error", reason="see the function's logs")
        routing = body["routing"]
        logger.info(
            "routed",
            category=body["question_classification"],
            answerer=body["answerer_LLM"],
            fallback=routing["fallback_to_default"],
            total_seconds=body["total_response_time"],
        )
        metrics.add_dimension(name="Strategy", value=service.strategy)
        metrics.add_metric(name="Routed", unit=MetricUnit.Count, value=1)
        metrics.add_metric(
            name=f"Routed_{body['question_classification']}", unit=MetricUnit.Count, value=1
        )
        return json_response(200, body)


lambda_handler = RouterHandler(eager=bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")))
