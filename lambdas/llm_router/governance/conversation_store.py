"""Conversations the server keeps: turns a client can continue but cannot invent or edit.

A client that sends its own ``history`` writes the assistant turns too, so it can put words in
the router's mouth ("Shall I write you a cover letter?") and have "yes please" answered by the
premium model. With ``CONVERSATION_TABLE_NAME`` set, every answer carries a ``conversation_id``;
sending it back continues the conversation from the turns stored here, which only the router
writes: the question as asked and the answer the model gave. A client can continue a
conversation, never rewrite it.

Storage (DynamoDB, partition key ``conversation_id``, TTL attribute ``expires_at``): one item per
conversation, holding

* ``owner``: the API key id of the caller that started it (API Gateway's
  ``requestContext.identity.apiKeyId``). A conversation is only ever read or written for its
  owner: another key's id, an unknown id and an expired one are the same 404, so an id leaks
  nothing;
* ``turns``: the newest ``conversation.max_turns`` messages (user and assistant, alternating),
  a user turn with ``capped`` when the coverage check ran on it: whether the core capped its
  answer at the degraded target (part of it off-topic, or not classified). A checked turn is
  not classified again; a capped one still in the window keeps the conversation capped,
  because the answer model still reads it; an unchecked one (its target was within the cap,
  so no check ran) is checked when a dearer target would read it;
* ``version``: a counter; each write is a PutItem conditional on the version read, so two
  concurrent requests of one conversation cannot drop each other's turns silently (the
  second gets no new ``conversation_id``: it is told the turn was not stored);
* ``expires_at``: ``conversation.ttl_hours`` after the last write.

A declined question is not stored: the answer model never reads it, so "now do the first thing I
asked" has nothing to recall. Two DynamoDB calls per request (GetItem before, PutItem after),
both by the low-level client with the budget guard's short timeouts.

Hand-written: two calls of the DynamoDB API, as for the budget guard.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Mapping
from typing import Any

from ..config import ConfigError, RoutesConfig
from ..config.settings import CONVERSATION_TABLE_ENV
from ..decision.conversation import ASSISTANT, USER, Turn, parse_conversation
from ..models.warm_up import SharedClient
from ..records import record

DEFAULT_TTL_HOURS = 24
ANONYMOUS = "anonymous"  # the owner of a request without an API key (direct invoke, local run)
_ID_LENGTH = 36
logger = logging.getLogger(__name__)


class ConversationNotFound(LookupError):
    """No conversation of this caller has this id (never existed, expired, or another's)."""


class ConversationUnavailable(RuntimeError):
    """DynamoDB could not be read: the conversation's turns are unknown."""


@record(frozen=True)
class StoredConversation:
    conversation_id: str
    turns: tuple[Turn, ...]
    # Per turn: whether its answer was capped when it was asked; None: not checked then (its
    # target was within the cap), so the core checks it before a dearer target reads it.
    # Assistant turns, the router's own, are None and never checked.
    flags: tuple[bool | None, ...]
    version: int

    @property
    def capped(self) -> bool:
        """A turn the answer model will read was capped when it was asked."""
        return any(flag is True for flag in self.flags)


def parse_ttl_hours(raw: Mapping[str, Any]) -> int:
    """``conversation.ttl_hours`` (default 24): how long a conversation lives after its last
    turn."""
    section = raw.get("conversation", {})
    value = section.get("ttl_hours", DEFAULT_TTL_HOURS) if isinstance(section, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"conversation.ttl_hours must be a whole number >= 1, got {value!r}")
    return value


def new_conversation_id() -> str:
    return str(uuid.uuid4())


def is_conversation_id(value: Any) -> bool:
    """The shape of an id this store issues (a UUID string); anything else is a 400."""
    if not isinstance(value, str) or len(value) != _ID_LENGTH:
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


class ConversationStore:
    """Reads and writes the server-kept conversations of one table."""

    def __init__(
        self,
        config: RoutesConfig,
        table_name: str,
        client: Any | None = None,
        clock: Any = time.time,
        shared: SharedClient | None = None,
    ) -> None:
        self.table_name = table_name
        self._shared = shared
        self.max_turns = parse_conversation(config.raw).max_turns
        self.ttl_seconds = parse_ttl_hours(config.raw) * 3600
        self._client = client
        self._clock = clock

    @classmethod
    def from_env(
        cls, config: RoutesConfig, shared: SharedClient | None = None
    ) -> ConversationStore | None:
        """The store on ``CONVERSATION_TABLE_NAME``; None when it is unset. ``shared``: the
        DynamoDB client to use (the budget guard's, which its warm-up creates off the request
        path): creating a second one would cost the first request ~100 ms."""
        table = os.environ.get(CONVERSATION_TABLE_ENV)
        return cls(config, table, shared=shared) if table else None

    @property
    def client(self) -> Any:
        if self._client is None:
            from .budget import table_client  # here: the handler imports this early

            self._client = table_client(self._shared)
        return self._client

    def load(self, conversation_id: str, owner: str) -> StoredConversation:
        """The caller's conversation; ConversationNotFound unless it is theirs and alive."""
        try:
            item = self.client.get_item(
                TableName=self.table_name,
                Key={"conversation_id": {"S": conversation_id}},
                ConsistentRead=True,
            ).get("Item")
        except Exception as exc:  # noqa: BLE001 - any client failure: the turns are unknown
            logger.warning("conversation: GetItem failed: %r", exc)
            raise ConversationUnavailable("the conversation store could not be read") from exc
        if (
            item is None
            or item.get("owner", {}).get("S") != owner
            or int(item.get("expires_at", {}).get("N", "0")) <= self._clock()
        ):
            raise ConversationNotFound(conversation_id)
        turns: list[Turn] = []
        flags: list[bool | None] = []
        for entry in item.get("turns", {}).get("L", []):
            fields = entry["M"]
            turns.append(Turn(fields["role"]["S"], fields["content"]["S"]))
            flags.append(fields["capped"]["BOOL"] if "capped" in fields else None)
        return StoredConversation(
            conversation_id, tuple(turns), tuple(flags), int(item["version"]["N"])
        )

    def append(
        self,
        previous: StoredConversation | None,
        owner: str,
        question: str,
        answer: str,
        capped: bool | None,
    ) -> str | None:
        """Store a question and its answer; the conversation's id, or None if not stored.

        ``previous`` None starts a new conversation. The write is conditional on the version
        read (or on the id being new), so a concurrent write is detected, never overwritten.
        """
        conversation_id = previous.conversation_id if previous else new_conversation_id()
        kept = list(previous.turns) if previous else []
        flags: list[bool | None] = list(previous.flags) if previous else []
        kept += [Turn(USER, question), Turn(ASSISTANT, answer)]
        flags += [capped, None]
        kept, flags = kept[-self.max_turns :], flags[-self.max_turns :]
        if kept and kept[0].role != USER:  # an odd max_turns: keep whole exchanges
            kept, flags = kept[1:], flags[1:]
        version = (previous.version if previous else 0) + 1
        item = {
            "conversation_id": {"S": conversation_id},
            "owner": {"S": owner},
            "version": {"N": str(version)},
            "expires_at": {"N": str(int(self._clock()) + self.ttl_seconds)},
            "turns": {"L": [self._turn_item(t, f) for t, f in zip(kept, flags, strict=True)]},
        }
        condition: dict[str, Any]
        if previous is None:
            condition = {"ConditionExpression": "attribute_not_exists(conversation_id)"}
        else:
            condition = {
                "ConditionExpression": "#owner = :owner AND #version = :version",
                "ExpressionAttributeNames": {"#owner": "owner", "#version": "version"},
                "ExpressionAttributeValues": {
                    ":owner": {"S": owner},
                    ":version": {"N": str(previous.version)},
                },
            }
        try:
            self.client.put_item(TableName=self.table_name, Item=item, **condition)
        except Exception as exc:  # noqa: BLE001 - the answer stands; the turn is not stored
            logger.warning("conversation: PutItem failed: %r", exc)
            return None
        return conversation_id

    @staticmethod
    def _turn_item(turn: Turn, capped: bool | None) -> dict[str, Any]:
        fields: dict[str, Any] = {"role": {"S": turn.role}, "content": {"S": turn.content}}
        if capped is not None:
            fields["capped"] = {"BOOL": capped}
        return {"M": fields}


def owner_scope(key_id: str | None) -> str:
    """The owner a request's conversations are scoped to: its API key id, else ANONYMOUS."""
    return key_id if key_id else ANONYMOUS

