"""``POST /feedback``: callers say whether an answer helped and which category it should have had.

    {"feedback_token": "...", "helpful": false, "correct_category": "billing",
     "question": "...", "comment": "...", "answerer_LLM": "..."}

``feedback_token`` (required) is the one every ``/ask`` answer carries: it names the request and
the API key it was issued to, and is signed (:mod:`llm_router.governance.provenance`). A token
that is malformed, forged, expired or another key's is a 403 (``invalid_feedback_token``), so
feedback exists only for answers the router gave, from the caller it gave them to. ``request_id``
may be sent too and must then be the token's. ``correct_category`` is a configured category or
``out_of_scope`` (the question should have been declined). The question text is stored only when
the client sends it (a correction with its question is a labelled example ``scripts/feedback.py
export`` turns into evaluation and reference-prompt data). ``answerer_LLM`` and
``question_classification`` are the model that answered and the category the router chose,
echoed by the client from the ``/ask`` response (under the same names): this function cannot know
them (it only writes; the router keeps no per-request store).

One item per ``request_id`` in DynamoDB (``FEEDBACK_TABLE_NAME``: partition key ``request_id``,
TTL attribute ``expires_at`` = now + ``feedback.retention_days``), recording the caller's API key
id, tier and ``provenance``. A second feedback on the same request from the same key replaces the
first (the caller changed their mind); a PutItem condition refuses one from any other key (409).
The function may only ``PutItem`` and read the signing secret. A metric counts feedback by kind
(``correction``, ``not_helpful``, ``helpful``, ``comment``), one EMF flush per invocation.

The handler cannot throw: every event gets a JSON response, with the configured CORS origins; bad
input is a 400 naming the field, parsed as ``/ask`` parses its body (bounded JSON, no unpaired
surrogates, escaped or not), and a DynamoDB or Secrets Manager failure is a 503 with Retry-After.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from ..config import OUT_OF_SCOPE, ConfigError, RoutesConfig, load_routes
from ..errors import RoutingError
from ..governance.provenance import (
    DEFAULT_RETENTION_DAYS,
    FEEDBACK_SECRET_ENV,
    TOKEN_MAX_CHARS,
    Claims,
    FeedbackSettings,
    FeedbackTokens,
    InvalidToken,
    SecretUnavailable,
    parse_feedback_settings,
)
from ..models.bedrock import aws_error_code
from ..observability.telemetry import instrumented
from .http_api import (
    BadRequest,
    _meaningful,
    allowed_origins,
    api_key_id_of,
    json_response,
    load_body,
    with_cors,
)

FEEDBACK_TABLE_ENV = "FEEDBACK_TABLE_NAME"
STRATEGY_ENV = "ROUTER_STRATEGY"
REQUEST_ID_MAX_CHARS = 128
COMMENT_MAX_CHARS = 2000
MODEL_ID_MAX_CHARS = 256  # an inference-profile or prompt-router ARN fits
FIELDS = (
    "feedback_token", "request_id", "helpful", "correct_category", "question", "comment",
    "answerer_LLM", "question_classification",
)
KINDS = ("correction", "not_helpful", "helpful", "comment")
PROVENANCE = "feedback-token"  # what export accepts: written only after a token verified
_SECONDS_PER_DAY = 86_400
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "multi-llm-router-feedback"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MultiLlmRouter"))
UNAVAILABLE = {
    "error": "feedback unavailable",
    "code": "feedback_unavailable",
    "message": "The feedback could not be stored; retry after Retry-After seconds.",
}


@dataclass(frozen=True)
class Feedback:
    token: str
    request_id: str | None = None  # as the client sent it; must be the token's
    helpful: bool | None = None
    correct_category: str | None = None
    question: str | None = None
    comment: str | None = None
    answerer: str | None = None  # answerer_LLM, as the client echoed it
    routed_category: str | None = None  # question_classification, as the client echoed it

    @property
    def kind(self) -> str:
        """What the feedback says, most specific first (the metric's kind)."""
        if self.correct_category is not None:
            return "correction"
        if self.helpful is not None:
            return "helpful" if self.helpful else "not_helpful"
        return "comment"


def _text(body: Mapping[str, Any], name: str, limit: int, meaningful: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f'"{name}" must be a non-empty string when given')
    if len(value) > limit:
        raise BadRequest(f'"{name}" is {len(value)} characters; the maximum is {limit}')
    if meaningful and not _meaningful(value):
        raise BadRequest(f'"{name}" must contain at least one letter or digit')
    return value.strip()


def parse_feedback(event: Any, config: RoutesConfig) -> Feedback:
    """The feedback in an API Gateway proxy event; BadRequest names what is wrong."""
    body = load_body(event, 'the request body must be a JSON object like {"feedback_token": "..."}')
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(FIELDS)}")
    token = _text(body, "feedback_token", TOKEN_MAX_CHARS)
    if token is None:
        raise BadRequest('"feedback_token" is required: the feedback_token of the /ask response')
    helpful = body.get("helpful")
    if helpful is not None and not isinstance(helpful, bool):
        raise BadRequest('"helpful" must be true or false when given')
    valid = (*config.category_names, OUT_OF_SCOPE)
    category, routed = body.get("correct_category"), body.get("question_classification")
    for name, value in (("correct_category", category), ("question_classification", routed)):
        if value is not None and value not in valid:
            raise BadRequest(f'"{name}" must be one of {", ".join(valid)}')
    feedback = Feedback(
        token=token,
        request_id=_text(body, "request_id", REQUEST_ID_MAX_CHARS),
        helpful=helpful,
        correct_category=category,
        question=_text(body, "question", config.api.max_question_chars, meaningful=True),
        comment=_text(body, "comment", COMMENT_MAX_CHARS),
        answerer=_text(body, "answerer_LLM", MODEL_ID_MAX_CHARS),
        routed_category=routed,
    )
    if (feedback.helpful, feedback.correct_category, feedback.comment) == (None, None, None):
        raise BadRequest('say something: give "helpful", "correct_category" or "comment"')
    return feedback


def to_item(
    feedback: Feedback, claims: Claims, retention_days: int, now: float, strategy: str | None
) -> dict[str, Any]:
    """The DynamoDB item (low-level attribute values); absent fields are not stored."""
    item: dict[str, Any] = {
        "request_id": {"S": claims.request_id},
        "kind": {"S": feedback.kind},
        "received_at": {"S": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")},
        "expires_at": {"N": str(int(now) + retention_days * _SECONDS_PER_DAY)},
        "api_key_id": {"S": claims.key_id},
        "tier": {"S": claims.tier},
        "provenance": {"S": PROVENANCE},
    }
    if feedback.helpful is not None:
        item["helpful"] = {"BOOL": feedback.helpful}
    optional = {
        "correct_category": feedback.correct_category,
        "question": feedback.question,
        "comment": feedback.comment,
        "answerer_LLM": feedback.answerer,
        "question_classification": feedback.routed_category,
        "strategy": strategy,
    }
    item.update({name: {"S": value} for name, value in optional.items() if value})
    return item


class FeedbackHandler:
    """The feedback function; the local API builds one with an explicit client, table and tokens."""

    def __init__(
        self,
        config: RoutesConfig | None = None,
        table_name: str | None = None,
        client: Any | None = None,
        strategy: str | None = None,
        tokens: FeedbackTokens | None = None,
    ) -> None:
        self._config = config
        self._table = table_name
        self._client = client
        self._strategy = strategy
        self._tokens = tokens
        self._settings = FeedbackSettings(DEFAULT_RETENTION_DAYS)
        self._handle = instrumented(self._handle_event, metrics, logger)

    def _dependencies(self) -> tuple[RoutesConfig, str, Any, FeedbackTokens | None]:
        if self._config is None:
            self._config = load_routes()
        self._settings = parse_feedback_settings(self._config.raw)
        if self._table is None:
            self._table = os.environ.get(FEEDBACK_TABLE_ENV) or ""
        if self._tokens is None:
            self._tokens = FeedbackTokens.from_env(self._config.raw)
        if self._client is None:
            from ..governance.budget import dynamodb_client  # short timeouts, created on first use

            self._client = dynamodb_client()
        return self._config, self._table, self._client, self._tokens

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        try:
            return with_cors(self._handle(event, context), event, allowed_origins(self._config))
        except Exception:  # the wrappers themselves failed
            logger.exception("unhandled error around the feedback handler")
            return json_response(500, RoutingError("internal_error").body())

    def _handle_event(self, event: Any, context: Any) -> dict[str, Any]:
        try:
            return self._store(event)
        except Exception:  # the last line of defence: log it, never leak a stack trace
            logger.exception("unhandled error while storing feedback")
            return json_response(500, RoutingError("internal_error").body())

    def _store(self, event: Any) -> dict[str, Any]:
        try:
            config, table, client, tokens = self._dependencies()
        except (ConfigError, OSError, ValueError) as exc:
            logger.error("feedback refuses to serve", reason=f"{type(exc).__name__}: {exc}")
            return json_response(503, UNAVAILABLE, {"Retry-After": "60"})
        try:
            feedback = parse_feedback(event, config)
        except BadRequest as exc:
            logger.info("bad feedback", reason=str(exc))
            return json_response(400, {**RoutingError("bad_request").body(), "error": str(exc)})
        if not table or tokens is None:
            logger.error("no feedback table or signing secret",
                         variables=[FEEDBACK_TABLE_ENV, FEEDBACK_SECRET_ENV])
            return json_response(503, UNAVAILABLE, {"Retry-After": "60"})
        try:
            claims = tokens.claims_of(feedback.token, api_key_id_of(event) or "")
            if feedback.request_id is not None and feedback.request_id != claims.request_id:
                raise InvalidToken("the request_id is not the feedback_token's")
        except InvalidToken as exc:
            logger.info("feedback refused", reason=str(exc))
            error = RoutingError("invalid_feedback_token", error=str(exc))
            return json_response(error.status, error.body())
        except SecretUnavailable:
            return json_response(503, UNAVAILABLE, {"Retry-After": "5"})
        strategy = self._strategy or os.environ.get(STRATEGY_ENV)
        item = to_item(feedback, claims, self._settings.retention_days, time.time(), strategy)
        try:
            client.put_item(
                TableName=table,
                Item=item,
                # Only the key the answer went to may replace a feedback on it.
                ConditionExpression="attribute_not_exists(request_id) OR api_key_id = :key",
                ExpressionAttributeValues={":key": {"S": claims.key_id}},
            )
        except Exception as exc:  # botocore's errors, whatever the cause: the caller may retry
            if aws_error_code(exc) == "ConditionalCheckFailedException":
                error = RoutingError("feedback_conflict")
                return json_response(error.status, error.body())
            logger.error("feedback not stored", error=f"{type(exc).__name__}: {exc}"[:2000])
            return json_response(503, UNAVAILABLE, {"Retry-After": "5"})
        logger.info("feedback stored", kind=feedback.kind, feedback_for=claims.request_id)
        metrics.add_metric(name="Feedback", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=f"Feedback_{feedback.kind}", unit=MetricUnit.Count, value=1)
        body = {"stored": True, "request_id": claims.request_id, "kind": feedback.kind}
        return json_response(200, body)


lambda_handler = FeedbackHandler()
