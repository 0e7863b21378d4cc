"""Ask a deployed (or local) router a question and print the answer with its routing decision.

    python scripts/ask.py --stack SemanticRouterStack "What year did World War II end?"
    python scripts/ask.py --stack semantic "..."              # a router name works too
    python scripts/ask.py --url http://127.0.0.1:3000/semantic --api-key KEY "..."

With ``--stack`` the API URL and the API key's id come from the stack's CloudFormation outputs
(``ApiUrl``, ``ApiKeyId``) and the key's value from API Gateway, which replaces the original
sample's three steps (describe-stacks, get-api-key, curl, each through jq). ``--json`` prints the
raw response body. Errors are one line on stderr and a non-zero exit code.

The answer is printed as the model writes it: the question goes to ``POST /ask/stream`` and each
``delta`` event is printed when it arrives, then the routing, cost and timings from ``done``.
``--no-stream`` asks ``POST /ask`` and prints the whole answer at the end.

``--chat`` holds a conversation: it reads one question per line from stdin (``quit`` or end of
input stops), so follow-ups such as "why?" keep their context and their model. When the router
keeps conversations (its answers, streamed or not, carry ``conversation_id``), each question is
sent with the id the last answer returned and the turns live on the server, where this client
cannot alter them. Otherwise each question is
sent with the turns so far as ``history``: a question that fails is not added to it, and the
oldest turns are dropped to stay within ``--max-turns``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import cli
from llm_router.pipeline.strategies import STRATEGIES

# The router stacks' CloudFormation output keys (stacks/router_stack.py).
OUTPUT_API_URL = "ApiUrl"  # the URL of POST /ask (or, from older stacks, of the stage)
OUTPUT_API_ID = "ApiId"
OUTPUT_API_KEY_ID = "ApiKeyId"
ASK_SUFFIX = "/ask"
STREAM_SUFFIX = "/stream"  # POST /ask/stream: the same request, answered as server-sent events
DEFAULT_TIMEOUT_SECONDS = 90.0
DEFAULT_CHAT_TURNS = 20  # routes.json conversation.max_turns by default
QUIT_WORDS = ("quit", "exit")


class AskError(Exception):
    """Something the user must fix; printed as one line, never as a traceback."""


@dataclass(frozen=True)
class Endpoint:
    url: str  # the POST /ask URL
    api_key: str


def ask_url(url: str) -> str:
    """The POST /ask URL for a stage or router URL (``.../prod``, ``.../semantic``) or itself."""
    trimmed = url.rstrip("/")
    return trimmed if trimmed.endswith(ASK_SUFFIX) else trimmed + ASK_SUFFIX


def stack_name_for(name: str) -> str:
    """Accept a router name (``semantic``) for its stack (``SemanticRouterStack``)."""
    strategy = STRATEGIES.get(name)
    return strategy.stack_name if strategy else name


def resolve_stack(session: Any, stack_name: str) -> Endpoint:
    """The URL and key value of a deployed router stack; AskError says what is missing."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    try:
        cloudformation = session.client("cloudformation")
        region = cloudformation.meta.region_name
        try:
            stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if "does not exist" in str(error.get("Message", "")):
                raise AskError(
                    f"stack {stack_name} not found in {region}: deploy it "
                    f"(npx cdk deploy {stack_name}) or pass the --region it is in"
                ) from None
            raise AskError(f"cannot read stack {stack_name}: {_client_error(exc)}") from None
        stack = stacks[0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        missing = [key for key in (OUTPUT_API_URL, OUTPUT_API_KEY_ID) if key not in outputs]
        if missing:
            raise AskError(
                f"stack {stack_name} ({stack.get('StackStatus', 'unknown status')}) has no "
                f"output {' or '.join(missing)}: is it a router stack, and fully deployed?"
            )
        try:
            key = session.client("apigateway").get_api_key(
                apiKey=outputs[OUTPUT_API_KEY_ID], includeValue=True
            )
        except ClientError as exc:
            raise AskError(
                f"cannot read API key {outputs[OUTPUT_API_KEY_ID]} of stack {stack_name}: "
                f"{_client_error(exc)}"
            ) from None
    except NoCredentialsError:
        raise AskError(
            "no AWS credentials found: configure them (aws configure, AWS_PROFILE or "
            "aws sso login), or target a local run with --url and --api-key"
        ) from None
    except NoRegionError:
        raise AskError("no AWS region: pass --region or set AWS_REGION") from None
    except BotoCoreError as exc:
        raise AskError(f"AWS: {exc}") from None
    if not key.get("value"):
        raise AskError(f"API key {outputs[OUTPUT_API_KEY_ID]} has no value you may read")
    return Endpoint(ask_url(outputs[OUTPUT_API_URL]), key["value"])


def _client_error(exc: Any) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', exc)}"


def describe_error_body(raw: bytes) -> str:
    """The API's error in a few words: ``error``/``message`` and, when present, ``reason``."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace").strip()[:300] or "(empty body)"
    if not isinstance(body, Mapping):
        return json.dumps(body)[:300]
    message = body.get("error") or body.get("message") or json.dumps(body)[:300]
    details = [
        str(body[key]) for key in ("code", "stage", "model_id", "bedrock_error", "reason")
        if body.get(key)
    ]
    if body.get("error") and body.get("message"):  # the router's advice on what to do
        details.append(str(body["message"]))
    if body.get("request_id"):
        details.append(f"request id {body['request_id']}")
    return f"{message} ({'; '.join(details)})" if details else str(message)


def _request(
    url: str,
    endpoint: Endpoint,
    question: str,
    category: str | None,
    history: Sequence[Mapping[str, str]],
    conversation_id: str | None = None,
) -> urllib.request.Request:
    payload: dict[str, Any] = {"question": question}
    if category:
        payload["category"] = category
    if conversation_id:
        payload["conversation_id"] = conversation_id
    elif history:
        payload["history"] = list(history)
    return urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        method="POST",
        headers={"Content-Type": "application/json", "x-api-key": endpoint.api_key},
    )


def _read(
    url: str, request: urllib.request.Request, timeout: float, read: Callable[[Any], Any]
) -> Any:
    """``read(response)`` of a 2xx answer; AskError with the status and reason otherwise."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return read(response)
    except urllib.error.HTTPError as exc:
        raise AskError(f"HTTP {exc.code} from {url}: {describe_error_body(exc.read())}") from None
    except urllib.error.URLError as exc:
        raise AskError(f"cannot reach {url}: {exc.reason}") from None
    except TimeoutError:
        raise AskError(f"no answer from {url} within {timeout:g} s") from None


def server_sent_events(lines: Iterator[bytes]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event name, its JSON data) for each event of a ``text/event-stream`` body."""
    name, data = "message", []
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[len("event:"):].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:"):].strip())


def stream_question(
    endpoint: Endpoint,
    question: str,
    on_text: Callable[[str], None],
    category: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    history: Sequence[Mapping[str, str]] = (),
    conversation_id: str | None = None,
) -> dict[str, Any]:
    """POST to ``/ask/stream``, calling ``on_text`` with each piece of the answer as it arrives;
    the ``done`` event's body with the whole ``answer``, else AskError (an ``error`` event too).
    ``history`` and ``conversation_id`` as for :func:`post_question`."""
    url = endpoint.url + STREAM_SUFFIX

    def read(response: Any) -> dict[str, Any]:
        parts: list[str] = []
        for name, data in server_sent_events(response):
            if name == "delta":
                parts.append(str(data.get("text", "")))
                on_text(parts[-1])
            elif name == "routing" and data.get("declined"):
                parts.append(str(data.get("decline_message", "")))
                on_text(parts[-1])
            elif name == "error":
                reason = describe_error_body(json.dumps(data).encode())
                raise AskError(f"{url} ended with an error: {reason}")
            elif name == "done":
                return {**data, "answer": "".join(parts)}
        raise AskError(f"{url} ended the stream without a done event")

    try:
        request = _request(url, endpoint, question, category, history, conversation_id)
        return _read(url, request, timeout, read)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise AskError(f"{url} sent an event that is not JSON") from None


def post_question(
    endpoint: Endpoint,
    question: str,
    category: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    history: Sequence[Mapping[str, str]] = (),
    conversation_id: str | None = None,
) -> dict[str, Any]:
    """POST the question; the parsed body of a 2xx answer, else AskError with status and reason.

    ``conversation_id`` continues a conversation the router keeps; ``history`` sends the turns
    (a router that keeps none)."""
    request = _request(endpoint.url, endpoint, question, category, history, conversation_id)
    raw = _read(endpoint.url, request, timeout, lambda response: response.read())
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise AskError(f"{endpoint.url} answered with something other than JSON") from None
    if not isinstance(body, dict):
        raise AskError(f"{endpoint.url} answered with JSON that is not an object")
    return body


def decided_by_router(routing: Mapping[str, Any], decider: str | None) -> str:
    name = f"{routing.get('strategy', 'router')} router"
    return f"{name} with {decider}" if decider else name


def format_cost(usage: Any) -> str:
    """``usage.cost_usd`` in words: the total and each priced call; unknown prices say so."""
    if not isinstance(usage, Mapping) or not isinstance(usage.get("cost_usd"), Mapping):
        return "not reported"
    costs = usage["cost_usd"]
    total = costs.get("total")
    calls = [*usage.get("classification", []), *([usage["answer"]] if usage.get("answer") else [])]
    parts = [
        f"{call.get('model_id')} {call.get('input_tokens')}+{call.get('output_tokens')} tokens "
        + ("(price unknown)" if call.get("cost_usd") is None else f"${call['cost_usd']:.8f}")
        for call in calls
        if isinstance(call, Mapping)
    ]
    shown = "unknown (a model has no price in routes.json)" if total is None else f"${total:.8f}"
    return f"{shown}" + (f" = {'; '.join(parts)}" if parts else "")


def format_answer(body: Mapping[str, Any], with_answer: bool = True) -> str:
    """The answer (unless it was printed as it streamed), then the routing decision and
    timings, for a person to read."""
    routing = body.get("routing") or {}
    category = body.get("question_classification")
    decider = body.get("classifier_LLM") or body.get("embedding_LLM")
    decided = f"{routing.get('strategy', 'router')} router"
    if decider:
        decided += f" with {decider}"
    if routing.get("decided_by") == "caller":
        decided = "named by the caller"
        if routing.get("classified_as"):
            decided += f", checked in scope by the {decided_by_router(routing, decider)}"
    if routing.get("declined"):
        route = f"{category}: declined, no answer model called ({decided})"
    else:
        route = f"{category} -> {body.get('answerer_LLM')} ({decided})"
    lines = [str(body.get("answer", "")).strip(), ""] if with_answer else []
    lines.append(f"Routing: {route}")
    if routing.get("fallback_to_default"):
        lines.append(f"Fallback: {routing.get('fallback_reason', 'default category used')}")
    if routing.get("degraded"):
        lines.append(f"Degraded: {routing['degraded']}")
    if routing.get("fallback_used"):
        failed = [t for t in routing.get("targets", []) if t.get("result") != "ok"]
        tried = ", ".join(f"{t.get('model_id')} {t.get('error_code')}" for t in failed)
        lines.append(f"Answered by a fallback target after: {tried}")
    conversation = routing.get("conversation")
    if isinstance(conversation, Mapping):
        lines.append(f"Conversation: {conversation.get('affinity')} ({conversation.get('reason')})")
    lines.append(f"Cost: {format_cost(body.get('usage'))}")
    lines.append(
        "Time: classification {:.3f} s, answer {:.3f} s, total {:.3f} s".format(
            float(body.get("classification_time") or 0),
            float(body.get("answer_generation_time") or 0),
            float(body.get("total_response_time") or 0),
        )
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Ask a router a question.")
    parser.add_argument("question", nargs="?", help="the question (with --chat: the first)")
    parser.add_argument(
        "--chat", action="store_true", help="a conversation: one question per line of stdin"
    )
    parser.add_argument(
        "--max-turns", type=int, default=DEFAULT_CHAT_TURNS,
        help="--chat: turns of history to send at most (routes.json conversation.max_turns)",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--stack",
        help=f"deployed router stack, e.g. SemanticRouterStack, or a router name "
        f"({', '.join(STRATEGIES)})",
    )
    target.add_argument(
        "--url", help="router URL, e.g. http://127.0.0.1:3000/semantic (/ask is appended)"
    )
    parser.add_argument("--api-key", help="the x-api-key value (with --url)")
    parser.add_argument("--category", help="skip classification: route to this category")
    parser.add_argument("--json", action="store_true", help="print the raw response body")
    parser.add_argument(
        "--no-stream", action="store_true",
        help="ask POST /ask and print the answer when it is complete (default: stream it)",
    )
    parser.add_argument("--region", help="AWS region of the stack")
    parser.add_argument("--profile", help="AWS profile to use")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS,
        help=f"seconds to wait for the whole response (default {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    args = parser.parse_args(argv)
    if args.question is None and not args.chat:
        parser.error("give a question, or --chat")
    if args.max_turns < 2 or args.max_turns % 2:
        parser.error("--max-turns must be an even number >= 2 (a question and its answer each)")
    if args.url and not args.api_key:
        parser.error("--url needs --api-key (local.py prints it at start-up)")
    if args.stack and args.api_key:
        parser.error("--api-key goes with --url; with --stack the key comes from the stack")
    return args


def endpoint_for(args: argparse.Namespace) -> Endpoint:
    if args.url:
        return Endpoint(ask_url(args.url), args.api_key)
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        session = boto3.Session(profile_name=args.profile, region_name=args.region)
    except BotoCoreError as exc:  # e.g. ProfileNotFound
        raise AskError(f"AWS: {exc}") from None
    return resolve_stack(session, stack_name_for(args.stack))


def chat(
    endpoint: Endpoint, args: argparse.Namespace, lines: TextIO, out: TextIO, err: TextIO
) -> int:
    """Ask each line as the next turn of one conversation; 0 when every question was answered."""
    history: list[dict[str, str]] = []
    conversation_id: str | None = None  # set once the router says it keeps the conversation
    failures = 0
    questions = itertools.chain([args.question] if args.question else [], lines)
    out.write("Chat: one question per line; quit or end of input stops.\n")
    for line in questions:
        question = line.strip()
        if not question:
            continue
        if question.lower() in QUIT_WORDS:
            break
        out.write(f"you> {question}\n")
        try:
            body = ask_once(endpoint, args, question, out, history, conversation_id=conversation_id)
        except AskError as exc:
            err.write(f"error: {exc}\n")
            failures += 1
            continue
        out.write("\n")
        if "conversation_id" in body:  # the router keeps the turns
            conversation_id = body["conversation_id"] or conversation_id
            continue
        history += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": str(body.get("answer") or "(no answer)")},
        ]
        del history[: max(0, len(history) - args.max_turns)]
    out.flush()
    return 1 if failures else 0


def ask_once(
    endpoint: Endpoint,
    args: argparse.Namespace,
    question: str,
    out: TextIO,
    history: Sequence[Mapping[str, str]] = (),
    indent: int | None = None,
    conversation_id: str | None = None,
) -> dict[str, Any]:
    """Ask one question and print it: streamed as it arrives (a person reading), or whole
    (``--no-stream``; ``--json`` prints the body, the streamed one with its answer joined)."""
    if args.no_stream:
        body = post_question(
            endpoint, question, args.category, args.timeout, history, conversation_id
        )
        out.write(
            format_answer(body) if not args.json
            else json.dumps(body, indent=indent, ensure_ascii=False)
        )
        out.write("\n")
        return body

    def show(text: str) -> None:
        if not args.json:
            out.write(text)
            out.flush()

    body = stream_question(
        endpoint, question, show, args.category, args.timeout, history, conversation_id
    )
    if args.json:
        out.write(json.dumps(body, indent=indent, ensure_ascii=False) + "\n")
    else:
        out.write("\n\n" + format_answer(body, with_answer=False) + "\n")
    return body


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.chat:
            return chat(endpoint_for(args), args, sys.stdin, sys.stdout, sys.stderr)
        ask_once(endpoint_for(args), args, args.question, sys.stdout, indent=2)
    except AskError as exc:
        return cli.error(exc)
    return 0


if __name__ == "__main__":
    cli.run(main)
