"""AWS event-stream messages (``application/vnd.amazon.eventstream``) as Bedrock sends them.

``ConverseStream`` answers with a sequence of binary messages: a prelude (total length, headers
length, the prelude's CRC32), the headers (``:message-type``, ``:event-type`` or
``:exception-type``, ``:content-type``), a JSON payload and the message's CRC32. botocore parses
them with :class:`botocore.eventstream.EventStreamBuffer`; it has no encoder, and awscrt's is
part of its RPC client, not a function we could call, so this writes the format by hand (string
headers only: all ConverseStream uses). The tests decode every message with botocore's own parser,
so a mistake here fails there, not in the router.
"""

from __future__ import annotations

import json
import struct
from binascii import crc32
from typing import Any

_STRING_HEADER = 7  # botocore.eventstream: header value type 7 is a UTF-8 string
_PRELUDE = struct.Struct("!III")


def _headers(headers: dict[str, str]) -> bytes:
    parts = []
    for name, value in headers.items():
        raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
        parts.append(
            struct.pack("!B", len(raw_name)) + raw_name
            + struct.pack("!BH", _STRING_HEADER, len(raw_value)) + raw_value
        )
    return b"".join(parts)


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude, its CRC, headers, payload, the message's CRC."""
    header_bytes = _headers(headers)
    total = _PRELUDE.size + len(header_bytes) + len(payload) + 4
    prelude = struct.pack("!II", total, len(header_bytes))
    prelude += struct.pack("!I", crc32(prelude) & 0xFFFFFFFF)
    message = prelude + header_bytes + payload
    return message + struct.pack("!I", crc32(message) & 0xFFFFFFFF)


def event(event_type: str, body: dict[str, Any]) -> bytes:
    """A ConverseStream event (``messageStart``, ``contentBlockDelta``, ``metadata``...)."""
    return encode_message(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
        json.dumps(body).encode("utf-8"),
    )


def exception(exception_type: str, message: str) -> bytes:
    """An error inside the stream (``throttlingException``...): botocore raises it as an
    ``EventStreamError`` whose code is ``exception_type``, while the client iterates."""
    return encode_message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps({"message": message}).encode("utf-8"),
    )
