"""The stand-in's ConverseStream: Bedrock's event-stream wire format, parsed by botocore unchanged.

The encoder is checked against botocore's own decoder (``EventStreamBuffer``), and the whole
stream through a real bedrock-runtime client's ``converse_stream``: deltas, stop, usage, the
per-chunk delay, and faults before the stream (an HTTP error) or inside it (an exception event).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from bedrock_standin import eventstream
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def _stream(client: Any, text: str = "What is a prime number?") -> dict[str, Any]:
    return client.converse_stream(
        modelId=MODEL,
        messages=[{"role": "user", "content": [{"text": text}]}],
        inferenceConfig={"maxTokens": 200},
    )


def test_botocore_decodes_the_encoded_messages_byte_for_byte() -> None:
    buffer = EventStreamBuffer()
    wire = eventstream.event("contentBlockDelta", {"delta": {"text": "héllo"}})
    wire += eventstream.exception("throttlingException", "slow down")
    buffer.add_data(wire[:7])  # split mid-prelude, as a socket may
    buffer.add_data(wire[7:])
    first, second = list(buffer)
    assert first.headers == {
        ":event-type": "contentBlockDelta",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert json.loads(first.payload) == {"delta": {"text": "héllo"}}
    assert second.headers[":exception-type"] == "throttlingException"
    assert second.to_response_dict()["status_code"] == 400


def test_converse_stream_parses_unchanged(bedrock_client: Any, fresh_standin: Any) -> None:
    fresh_standin.script(MODEL, ["Two is the only even prime."])
    events = list(_stream(bedrock_client)["stream"])
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart"
    assert kinds[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    deltas = [e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e]
    assert deltas == ["Two ", "is ", "the ", "only ", "even ", "prime."]
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    usage = events[-1]["metadata"]["usage"]
    assert usage["outputTokens"] > 0 and usage["inputTokens"] > 0
    assert fresh_standin.calls()[-1]["api"] == "converse-stream"


def test_per_chunk_delay_spaces_the_deltas(bedrock_client: Any, fresh_standin: Any) -> None:
    fresh_standin.script(MODEL, ["one two three four"])
    fresh_standin.set_chunk_delay(MODEL, 0.05)
    started = time.perf_counter()
    arrivals = [
        time.perf_counter() - started
        for e in _stream(bedrock_client)["stream"]
        if "contentBlockDelta" in e
    ]
    assert len(arrivals) == 4
    assert arrivals[0] < arrivals[-1] - 0.1  # they arrive as written, not all at the end


def test_a_fault_before_the_stream_is_an_http_error(
    bedrock_client: Any, fresh_standin: Any
) -> None:
    fresh_standin.inject_fault(MODEL, "AccessDeniedException")
    with pytest.raises(ClientError) as caught:
        _stream(bedrock_client)
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"


def test_a_fault_inside_the_stream_after_chunks(bedrock_client: Any, fresh_standin: Any) -> None:
    fresh_standin.script(MODEL, ["one two three four"])
    fresh_standin.inject_fault(MODEL, "ServiceUnavailableException", count=1, after_chunks=2)
    deltas = []
    with pytest.raises(EventStreamError) as caught:
        for e in _stream(bedrock_client)["stream"]:
            if "contentBlockDelta" in e:
                deltas.append(e["contentBlockDelta"]["delta"]["text"])
    assert deltas == ["one ", "two "]
    assert caught.value.response["Error"]["Code"] == "serviceUnavailableException"


def test_stream_controls_over_http(fresh_standin: Any) -> None:
    def post(path: str, payload: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{fresh_standin.url}/_standin/{path}", json.dumps(payload).encode(), method="POST"
        )
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read())

    answer = post("delays", {"model_id": "*", "per_chunk_seconds": 0.1})
    assert answer["per_chunk_delays"] == {"*": 0.1} and answer["delays"] == {}
    post("faults", {"model_id": MODEL, "error": "ThrottlingException", "after_chunks": 1})
    with pytest.raises(urllib.error.HTTPError) as refused:
        post("faults", {"model_id": MODEL, "error": "AccessDeniedException", "after_chunks": 1})
    assert refused.value.code == 400


class _StreamingChat(BaseHTTPRequestHandler):
    """An OpenAI-compatible ``/chat/completions`` that streams (``"stream": true``), like
    Ollama's or vLLM's: ``data: {chunk}`` lines, usage in the last chunk, ``data: [DONE]``."""

    protocol_version = "HTTP/1.1"
    received: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers["Content-Length"])
        _StreamingChat.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        chunks = [
            {"choices": [{"delta": {"role": "assistant"}}]},
            *({"choices": [{"delta": {"content": w}}]} for w in ("It ", "ended ", "in 1945.")),
            {"choices": [{"delta": {}, "finish_reason": "stop"}]},
            {"choices": [], "usage": {"prompt_tokens": 21, "completion_tokens": 5}},
        ]
        for chunk in chunks:
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")


def test_answer_url_servers_stream_too() -> None:
    from http.server import ThreadingHTTPServer

    from bedrock_standin import StandInServer
    from llm_router.models.bedrock import runtime_client

    chat = ThreadingHTTPServer(("127.0.0.1", 0), _StreamingChat)
    threading.Thread(target=chat.serve_forever, daemon=True).start()
    _StreamingChat.received.clear()
    try:
        url = f"http://127.0.0.1:{chat.server_address[1]}/v1"
        with StandInServer(answer_url=url, answer_model="llama3.2") as server:
            client = runtime_client("us-east-1", server.url, credentials=("t", "t"))
            events = list(_stream(client, "When did WW2 end?")["stream"])
    finally:
        chat.shutdown()
        chat.server_close()
    deltas = [e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e]
    assert deltas == ["It ", "ended ", "in 1945."]
    usage = events[-1]["metadata"]["usage"]
    assert usage == {"inputTokens": 21, "outputTokens": 5, "totalTokens": 26}
    sent = _StreamingChat.received[0]
    assert sent["stream"] is True and sent["model"] == "llama3.2"
