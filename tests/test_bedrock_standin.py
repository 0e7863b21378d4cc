"""The Bedrock Runtime stand-in: real embeddings, Bedrock's request validation and error shapes,
driven through real boto3 clients over HTTP on loopback."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from bedrock_standin import StandInServer
from bedrock_standin.errors import ERROR_STATUS
from bedrock_standin.minilm import shared_model
from bedrock_standin.titan_space import to_titan
from botocore.exceptions import ClientError
from conftest import HAIKU, TITAN_EMBED, TITAN_TEXT
from llm_router.config import RoutesConfig
from llm_router.decision.classifiers.llm import build_prompt
from llm_router.models.bedrock import runtime_client

from layers import REPO_ROOT

GOLDEN = REPO_ROOT.parent / "shared" / "fixtures" / "minilm_golden.json"
ROUTER_ARN = "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1"


@pytest.fixture(scope="module")
def client(standin: Any) -> Any:
    """No retries, so every injected fault reaches the test as it was sent."""
    return runtime_client("us-east-1", standin.url, max_attempts=1, credentials=("t", "t"))


def invoke(client: Any, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.invoke_model(modelId=model_id, body=json.dumps(body))
    return json.loads(response["body"].read())


def error_of(call: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as info:
        call()
    error = info.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"], error["Error"][
        "Message"
    ]


def converse(client: Any, model_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return client.converse(
        modelId=model_id, messages=[{"role": "user", "content": [{"text": text}]}], **extra
    )


# --- embeddings ----------------------------------------------------------------------------------


def test_minilm_matches_sentence_transformers_golden_embeddings() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    model = shared_model()
    for text, expected in zip(golden["texts"], golden["embeddings"], strict=True):
        assert np.abs(model.embed(text) - np.array(expected)).max() < 1e-5, text[:40]


def test_titan_dimensions_preserve_cosine_exactly_above_384_and_nearly_at_256(
    routes: RoutesConfig,
) -> None:
    model = shared_model()
    prompts = [p for _, p in routes.reference_prompts()][::8]
    vectors = np.array([model.embed(p) for p in prompts])
    cosine = (vectors @ vectors.T)[np.triu_indices(len(prompts), 1)]
    for dimensions, mean_bound, max_bound in ((1024, 1e-6, 1e-6), (512, 1e-6, 1e-6),
                                              (256, 0.05, 0.2)):
        mapped = np.array([to_titan(v, dimensions, True) for v in vectors])
        error = np.abs((mapped @ mapped.T)[np.triu_indices(len(prompts), 1)] - cosine)
        assert error.mean() < mean_bound and error.max() < max_bound, dimensions


@pytest.mark.parametrize("dimensions", [256, 512, 1024])
def test_titan_v2_embedding_has_requested_dimensions(client: Any, dimensions: int) -> None:
    body = invoke(client, TITAN_EMBED, {"inputText": "hello world", "dimensions": dimensions})
    assert len(body["embedding"]) == dimensions
    assert abs(np.linalg.norm(body["embedding"]) - 1) < 1e-6
    assert body["embeddingsByType"]["float"] == body["embedding"]
    assert body["inputTextTokenCount"] == 2


def test_unnormalised_embedding_keeps_its_length(client: Any) -> None:
    body = invoke(client, TITAN_EMBED, {"inputText": "hello world", "normalize": False})
    assert abs(np.linalg.norm(body["embedding"]) - 1) > 0.01


def test_similar_questions_embed_closer_than_unrelated_ones(client: Any) -> None:
    def embed(text: str) -> np.ndarray:
        return np.array(invoke(client, TITAN_EMBED, {"inputText": text})["embedding"])

    ww2, ww1, pasta = (embed(t) for t in (
        "When did World War II end?", "What started World War I?", "How do I cook pasta?"))
    assert ww2 @ ww1 > ww2 @ pasta + 0.2


# --- validation and errors -------------------------------------------------------------------


@pytest.mark.parametrize("model_id,body,fragment", [
    (TITAN_EMBED, {"inputText": "x", "dimensions": 300}, "#/dimensions: 300 is not a valid enum"),
    (TITAN_EMBED, {"text": "x"}, "extraneous key [text]"),
    (TITAN_EMBED, {"inputText": ""}, "#/inputText: expected minLength: 1"),
    (TITAN_TEXT, {"textGenerationConfig": {}}, "required key [inputText] not found"),
    (TITAN_TEXT, {"inputText": "x", "textGenerationConfig": {"maxTokenCount": 9000}},
     "#/textGenerationConfig/maxTokenCount: 9000 is not less or equal to 8192"),
    (TITAN_TEXT, {"inputText": "x", "textGenerationConfig": {"temperature": 2}},
     "temperature: 2 is not less or equal to 1"),
    (HAIKU, {"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
     "required key [anthropic_version] not found"),
    (HAIKU, {"anthropic_version": "bedrock-2023-05-31",
             "messages": [{"role": "user", "content": "hi"}]}, "required key [max_tokens]"),
    (HAIKU, {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10,
             "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
     "alternate between user and assistant"),
    (HAIKU, {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10,
             "messages": [{"role": "assistant", "content": "a"}]}, "start with a user message"),
])
def test_invalid_native_bodies_are_validation_exceptions(
    client: Any, model_id: str, body: dict[str, Any], fragment: str
) -> None:
    code, status, message = error_of(lambda: invoke(client, model_id, body))
    assert (code, status) == ("ValidationException", 400)
    assert fragment in message


def test_converse_validates_the_conversation_and_the_model(client: Any) -> None:
    code, _, message = error_of(lambda: client.converse(
        modelId=HAIKU, messages=[{"role": "assistant", "content": [{"text": "hi"}]}]))
    assert code == "ValidationException" and "start with a user message" in message
    code, _, message = error_of(lambda: converse(client, TITAN_EMBED, "hi"))
    assert code == "ValidationException" and "doesn't support the model" in message
    code, _, message = error_of(lambda: converse(client, HAIKU, "hi",
                                                 inferenceConfig={"temperature": 1.5}))
    assert code == "ValidationException" and "temperature" in message
    code, _, _ = error_of(lambda: converse(client, "not a model", "hi"))
    assert code == "ValidationException"


@pytest.mark.parametrize("error", sorted(ERROR_STATUS))
def test_injected_faults_have_bedrocks_code_and_status(
    client: Any, fresh_standin: Any, error: str
) -> None:
    fresh_standin.inject_fault(HAIKU, error, count=1)
    code, status, _ = error_of(lambda: converse(client, HAIKU, "hi"))
    assert (code, status) == (error, ERROR_STATUS[error])
    assert converse(client, HAIKU, "hi")["output"]["message"]["content"][0]["text"]  # count=1


def test_modelled_exception_classes_are_raised(client: Any, fresh_standin: Any) -> None:
    fresh_standin.inject_fault(TITAN_EMBED, "ThrottlingException")
    with pytest.raises(client.exceptions.ThrottlingException):
        invoke(client, TITAN_EMBED, {"inputText": "x"})


def test_admin_endpoints_script_faults_and_list_calls(fresh_standin: Any, client: Any) -> None:
    def post(path: str, payload: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{fresh_standin.url}/_standin/{path}", data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    post("faults", {"model_id": "*", "error": "AccessDeniedException", "count": 1})
    assert error_of(lambda: converse(client, HAIKU, "hi"))[0] == "AccessDeniedException"
    post("scripts", {"model_id": HAIKU, "outputs": ["scripted answer"]})
    assert converse(client, HAIKU, "hi")["output"]["message"]["content"][0]["text"] == (
        "scripted answer")
    with urllib.request.urlopen(f"{fresh_standin.url}/_standin/calls", timeout=5) as response:
        calls = json.loads(response.read())["calls"]
    assert [(c["api"], c["status"]) for c in calls] == [("converse", 403), ("converse", 200)]
    post("reset", {})
    assert fresh_standin.calls() == []


def test_requests_without_sigv4_are_refused(standin: Any) -> None:
    request = urllib.request.Request(
        f"{standin.url}/model/{TITAN_EMBED}/invoke", data=b'{"inputText": "x"}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 403


# --- text models ---------------------------------------------------------------------------------


@pytest.mark.parametrize("question,label", [
    ("What year did World War II end?", "history"),
    ("Solve the quadratic equation: 2x^2 - 5x + 3 = 0", "math"),
    ("What's a good recipe for pasta carbonara?", "none"),
])
def test_titan_text_classifies_the_routers_prompt_zero_shot(
    client: Any, routes: RoutesConfig, question: str, label: str
) -> None:
    body = invoke(client, TITAN_TEXT, {"inputText": build_prompt(routes, question),
                                       "textGenerationConfig": {"maxTokenCount": 5}})
    assert body["results"][0]["outputText"] == label
    assert body["inputTextTokenCount"] > 50
    assert body["results"][0]["completionReason"] == "FINISH"


def test_chat_models_return_a_labelled_placeholder_with_token_usage(client: Any) -> None:
    response = converse(client, HAIKU, "Who was Napoleon?")
    text = response["output"]["message"]["content"][0]["text"]
    assert "placeholder" in text and HAIKU in text
    usage = response["usage"]
    assert usage["inputTokens"] > 0 and usage["outputTokens"] > 20
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    short = converse(client, HAIKU, "Who was Napoleon?", inferenceConfig={"maxTokens": 5})
    assert short["stopReason"] == "max_tokens" and short["usage"]["outputTokens"] <= 5


def test_anthropic_messages_body_gets_an_anthropic_response(client: Any) -> None:
    body = invoke(client, HAIKU, {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 200,
                                  "system": "Be brief.",
                                  "messages": [{"role": "user", "content": "Who was Napoleon?"}]})
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["content"][0]["type"] == "text"
    assert body["usage"]["input_tokens"] > 0 and body["stop_reason"] == "end_turn"


def test_prompt_router_reports_the_model_it_invoked(client: Any) -> None:
    easy = converse(client, ROUTER_ARN, "Who was Napoleon?")
    hard = converse(client, ROUTER_ARN, "Prove that the square root of 2 is irrational.")
    assert easy["trace"]["promptRouter"]["invokedModelId"].endswith(HAIKU)
    assert "claude-3-5-sonnet" in hard["trace"]["promptRouter"]["invokedModelId"]
    code, _, _ = error_of(lambda: invoke(client, ROUTER_ARN, {"inputText": "x"}))
    assert code == "ValidationException"


@pytest.fixture
def openai_compatible_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A minimal OpenAI-compatible chat server, like Ollama's /v1, recording what it is sent."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            self._json({"data": [{"id": "llama3.2"}]})

        def do_POST(self) -> None:  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self._json({"choices": [{"message": {"content": "1945."}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 31, "completion_tokens": 3}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", received
    server.shutdown()
    server.server_close()


def test_answers_can_come_from_a_local_openai_compatible_server(
    openai_compatible_server: tuple[str, list[dict[str, Any]]], routes: RoutesConfig
) -> None:
    url, received = openai_compatible_server
    with StandInServer(answer_url=url) as server:
        client = runtime_client("us-east-1", server.url, credentials=("t", "t"))
        response = client.converse(
            modelId=HAIKU, system=[{"text": "You are a tutor."}],
            messages=[{"role": "user", "content": [{"text": "When did WW2 end?"}]}],
            inferenceConfig={"maxTokens": 100})
        classified = invoke(client, TITAN_TEXT, {"inputText": build_prompt(routes, "When did "
                                                                          "WW2 end?")})
    assert response["output"]["message"]["content"][0]["text"] == "1945."
    assert response["usage"] == {"inputTokens": 31, "outputTokens": 3, "totalTokens": 34}
    assert received == [{"model": "llama3.2", "max_tokens": 100, "messages": [
        {"role": "system", "content": "You are a tutor."},
        {"role": "user", "content": "When did WW2 end?"}]}]
    assert classified["results"][0]["outputText"] == "history"  # classification stays local
