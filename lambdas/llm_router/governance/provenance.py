"""Feedback tokens: proof that a feedback is about an answer this router gave to this caller.

Feedback becomes training data (``scripts/feedback.py export``), so a feedback must be tied to a
real answer: before tokens, any ``request_id`` was accepted (21/21 forged ids stored), any key
could overwrite another caller's feedback, and forged rows became labelled examples. Every ``/ask``
answer now carries ``feedback_token``::

    base64url({"r": request id, "k": API key id, "t": tier, "e": expiry}) "." base64url(HMAC)

an HMAC-SHA256 over the payload with a secret only the stack's functions can read (a Secrets
Manager secret the stack creates; ``FEEDBACK_SECRET_ARN``). ``POST /feedback`` accepts a feedback
only with a token that verifies, has not expired (``feedback.token_ttl_hours``, 7 days by
default) and was issued to the API key that sends the feedback; the stored item records that key
id and the tier. A stateless token rather than a stored record of issued ids: the router stays
write-free on its request path, and the feedback function needs no read permission.

The secret is read once per container and cached. In Lambda the router function starts reading
it in the background during its init phase (:meth:`SecretSource.prefetch`), so creating the
Secrets Manager client and the round trip overlap building the router rather than the first
request; elsewhere (and again, should that read fail) the first request starts it, overlapping
the models. Neither the init phase nor an answer waits for Secrets Manager unless the secret is
still being read when the first token is signed. Hand-written
because it is ``hmac`` plus one ``GetSecretValue``: Powertools' parameters utility would cache
the same value but adds its import to the cold start of both functions.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..config import ConfigError
from ..records import record

FEEDBACK_SECRET_ENV = "FEEDBACK_SECRET_ARN"
DEFAULT_RETENTION_DAYS = 90
DEFAULT_TOKEN_TTL_HOURS = 7 * 24
TOKEN_MAX_CHARS = 1024
_SECRET_TIMEOUT_SECONDS = 2.0
logger = logging.getLogger(__name__)


class InvalidToken(ValueError):
    """The token is malformed, forged, expired or another key's; the message says which."""


class SecretUnavailable(RuntimeError):
    """The signing secret could not be read (logged; no token is issued or verified)."""


@record(frozen=True)
class FeedbackSettings:
    retention_days: int
    token_ttl_hours: int = DEFAULT_TOKEN_TTL_HOURS


def parse_feedback_settings(raw: Mapping[str, Any]) -> FeedbackSettings:
    """The ``feedback`` section of routes.json, with defaults; ConfigError names a bad key."""
    section = raw.get("feedback", {})
    if not isinstance(section, Mapping):
        raise ConfigError("feedback must be an object")
    allowed = {"retention_days", "token_ttl_hours"}
    unknown = sorted(k for k in set(section) - allowed if not k.startswith("_"))
    if unknown:
        raise ConfigError(f"feedback: unknown key(s) {', '.join(unknown)}")
    values = {}
    for name, default in (
        ("retention_days", DEFAULT_RETENTION_DAYS), ("token_ttl_hours", DEFAULT_TOKEN_TTL_HOURS)
    ):
        value = section.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"feedback.{name} must be a whole number >= 1, got {value!r}")
        values[name] = value
    return FeedbackSettings(**values)


@record(frozen=True)
class Claims:
    """What a valid token says: which answer, to which key, in which tier, until when."""

    request_id: str
    key_id: str
    tier: str
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SecretSource:
    """The signing secret from Secrets Manager, read once per container and cached."""

    def __init__(self, secret_id: str, client: Any | None = None) -> None:
        self.secret_id = secret_id
        self._client = client
        self._value: bytes | None = None
        self._lock = threading.Lock()
        self._prefetch: threading.Thread | None = None

    def _client_or_new(self) -> Any:
        if self._client is None:
            from botocore.config import Config

            from ..models.bedrock import aws_client

            config = Config(
                connect_timeout=_SECRET_TIMEOUT_SECONDS,
                read_timeout=_SECRET_TIMEOUT_SECONDS,
                retries={"max_attempts": 2, "mode": "standard"},
            )
            self._client = aws_client("secretsmanager", config=config)
        return self._client

    def prefetch(self) -> None:
        """Start reading the secret in the background, if nobody has yet."""
        with self._lock:
            if self._value is not None or self._prefetch is not None:
                return
            self._prefetch = threading.Thread(
                target=self._fetch_quietly, name="feedback-secret", daemon=True
            )
            self._prefetch.start()

    def _fetch_quietly(self) -> None:
        with contextlib.suppress(SecretUnavailable):  # logged by get(); the next request retries
            self.get()

    def get(self) -> bytes:
        """The secret's bytes; SecretUnavailable (logged) when Secrets Manager fails."""
        prefetch = self._prefetch
        if prefetch is not None and prefetch is not threading.current_thread():
            prefetch.join(2 * _SECRET_TIMEOUT_SECONDS)
        with self._lock:
            if self._value is None:
                try:
                    response = self._client_or_new().get_secret_value(SecretId=self.secret_id)
                    self._value = str(response["SecretString"]).encode("utf-8")
                except Exception as exc:  # noqa: BLE001 - botocore's errors, whatever the cause
                    logger.error("feedback secret unavailable: %r", exc)
                    raise SecretUnavailable(type(exc).__name__) from None
                finally:
                    self._prefetch = None
            return self._value


class FeedbackTokens:
    """Issues and verifies feedback tokens with one secret."""

    def __init__(
        self,
        secret: Callable[[], bytes],
        ttl_seconds: float,
        clock: Callable[[], float] = time.time,
        prefetch: Callable[[], None] | None = None,
    ) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._prefetch = prefetch

    @classmethod
    def from_source(
        cls,
        source: SecretSource,
        settings: FeedbackSettings,
        clock: Callable[[], float] = time.time,
    ) -> FeedbackTokens:
        return cls(source.get, settings.token_ttl_hours * 3600, clock, source.prefetch)

    @classmethod
    def from_env(
        cls, raw_config: Mapping[str, Any], source: SecretSource | None = None
    ) -> FeedbackTokens | None:
        """Tokens signed with the secret ``FEEDBACK_SECRET_ARN`` names; None when unset.
        ``source``: that secret's source when one exists already (the init phase's prefetch)."""
        secret_id = os.environ.get(FEEDBACK_SECRET_ENV)
        if not secret_id:
            return None
        if source is None or source.secret_id != secret_id:
            source = SecretSource(secret_id)
        return cls.from_source(source, parse_feedback_settings(raw_config))

    def prefetch(self) -> None:
        if self._prefetch is not None:
            self._prefetch()

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._secret(), payload.encode("ascii"), hashlib.sha256).digest()
        return _b64(digest)

    def issue(self, request_id: str, key_id: str, tier: str) -> str:
        """A token for the answer to ``request_id``, valid for ``key_id`` until the TTL ends."""
        claims = {"r": request_id, "k": key_id, "t": tier,
                  "e": int(self._clock() + self.ttl_seconds)}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
        return f"{payload}.{self._sign(payload)}"

    def claims_of(self, token: str, key_id: str) -> Claims:
        """The token's claims if it is genuine, current and ``key_id``'s; else InvalidToken."""
        payload, dot, signature = token.partition(".")
        if not dot or not payload.isascii() or not signature.isascii():
            raise InvalidToken("the feedback_token is malformed")
        if not hmac.compare_digest(self._sign(payload), signature):
            raise InvalidToken("the feedback_token is not one this router issued")
        try:
            claims = json.loads(_unb64(payload))
            result = Claims(str(claims["r"]), str(claims["k"]), str(claims["t"]), int(claims["e"]))
        except (ValueError, binascii.Error, KeyError, TypeError):
            raise InvalidToken("the feedback_token is malformed") from None
        if result.expires_at < self._clock():
            raise InvalidToken("the feedback_token has expired")
        if not hmac.compare_digest(result.key_id, key_id):
            raise InvalidToken("the feedback_token was issued to another API key")
        return result
