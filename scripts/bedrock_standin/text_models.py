"""What the stand-in's text models say: zero-shot classification, or an honest placeholder.

No language model runs here, so the stand-in does the two jobs the router gives text models in the
one way it can do them well:

* **Classification prompts** (a list of ``- label: description`` lines and a ``Question:``, the
  shape ``llm_router.decision.classifiers.llm.build_prompt`` writes): zero-shot classification with
  the real MiniLM embeddings. Each description is split into its topic phrases; a label scores the
  mean of the question's two best cosine similarities to its phrases (one phrase can match by
  accident, two rarely do); the best-scoring label wins. A label described as "none of the topics
  above" wins when no other label scores at least ``NONE_THRESHOLD``, or when the question is
  closer, by ``WORLD_MARGIN``, to one of ``WORLD_TOPICS`` than to the best label: a fixed list of
  everyday subjects standing in for what a real LLM knows of the world beyond the listed labels. A
  world topic any of whose phrases matches one of the labels' topic phrases (cosine at least
  ``COVERED_SIMILARITY``) is left out for that prompt: it is the user's domain, not the world beyond
  it, so a router for medicine or programming is not pushed to decline its own questions. (0.6 drops
  "medicine" for a medicine label and "programming" for a code label, and nothing for the shipped
  tutor's labels, whose closest world phrase scores 0.57.) The first two constants were chosen on
  the project's own reference prompts (accuracy 0.96, off-topic recall 0.68 there: a plausible small
  classifier, weaker than the semantic router). Like a real classifier model it answers with the
  label alone.
* **Anything else** (a question to answer): a clearly labelled placeholder, never a made-up
  answer, or with ``answer_url`` the reply of a local OpenAI-compatible server (Ollama,
  llama.cpp, vLLM).

Token counts come from the MiniLM WordPiece tokenizer: not any Bedrock model's tokenizer, but
proportional to real usage, unlike a constant.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from .bodies import ChatRequest
from .errors import BedrockError
from .minilm import MiniLM

NONE_THRESHOLD = 0.1
WORLD_MARGIN = 0.05
COVERED_SIMILARITY = 0.6
WORLD_TOPICS = (
    "cooking, food and recipes",
    "sports and games",
    "movies, television, music and celebrities",
    "physics and how things work",
    "chemistry",
    "biology, the human body and medicine",
    "health, fitness and diet",
    "geography, places and travel",
    "the weather",
    "computers, technology and programming",
    "business, jobs and money",
    "relationships, feelings and personal advice",
    "art, books and literature",
    "language, grammar and writing",
    "shopping and products",
    "animals, pets and plants",
    "cars and transport",
    "home, garden and repairs",
    "current news",
    "religion and philosophy",
    "earth science: rocks, earthquakes and volcanoes",
    "astronomy, planets and stars",
    "greetings and small talk",
)
_LABEL_LINE = re.compile(r"^\s*-\s*([a-z][a-z0-9_-]*)\s*:\s*(.+?)\s*$", re.MULTILINE)
_QUESTION = re.compile(r"(?:^|\n)\s*Question:\s*(.+?)\s*(?:\n\s*[A-Z][a-z]+:\s*$|$)", re.DOTALL)
_DELIMITER = re.compile(r"</?question>")  # the router's question delimiters
_NONE_HINTS = ("none of the", "something else", "other topic", "anything else")
_SPLIT = re.compile(r",|;|\band\b|\bor\b")
_CHAT_TEMPLATE_TOKENS = 7  # role markers and separators a chat template adds per message
_PIECE = re.compile(r"\S+\s*|\s+")  # a word and the space after it: the pieces join to the text
_SSE_DATA = "data:"


@dataclass(frozen=True)
class Generation:
    text: str
    input_tokens: int
    output_tokens: int
    stop_reason: str  # Converse's vocabulary: end_turn | max_tokens


def parse_classification_prompt(prompt: str) -> tuple[dict[str, str], str] | None:
    """({label: description}, question) when ``prompt`` asks to classify a question."""
    labels = dict(_LABEL_LINE.findall(prompt))
    question = _QUESTION.search(prompt)
    if len(labels) < 2 or not question or not question.group(1).strip():
        return None
    return labels, _DELIMITER.sub(" ", question.group(1)).strip()


def topic_phrases(description: str) -> list[str]:
    """'questions about numbers, algebra and geometry' -> the description and each topic."""
    head, _, topics = description.partition(" about ")
    parts = [p.strip(" .") for p in _SPLIT.split(topics or head) if len(p.strip(" .")) > 2]
    return [description, *parts]


def words(text: str) -> list[str]:
    """``text`` in the pieces a stream sends: each word with the whitespace after it."""
    return _PIECE.findall(text)


class TextModels:
    def __init__(
        self, minilm: MiniLM, answer_url: str | None = None, answer_model: str | None = None
    ) -> None:
        self._minilm = minilm
        self._answer_url = answer_url.rstrip("/") if answer_url else None
        self._answer_model = answer_model
        self._world_cache: dict[tuple[tuple[str, str], ...], tuple[str, ...]] = {}

    def count(self, text: str) -> int:
        return self._minilm.count_tokens(text)

    def input_tokens(self, request: ChatRequest) -> int:
        texts = [request.system, *(text for _, text in request.messages)]
        overhead = _CHAT_TEMPLATE_TOKENS * (len(request.messages) + bool(request.system))
        return sum(self.count(t) for t in texts if t) + overhead

    def generate(
        self, request: ChatRequest, model_id: str, scripted: str | None = None
    ) -> Generation:
        prompt = request.last_user_text
        if scripted is not None:
            text = scripted
        elif (parsed := parse_classification_prompt(prompt)) is not None:
            text = self.classify(*parsed)
        elif self._answer_url:
            return self._forward(request)
        else:
            text = self.placeholder(prompt, model_id)
        return self._finish(request, text)

    def stream(
        self, request: ChatRequest, model_id: str, scripted: str | None = None
    ) -> Generator[str, None, Generation]:
        """:meth:`generate` a word at a time (what ConverseStream sends); the Generation is the
        generator's return value. Through ``--answer-url``, the server's own stream."""
        forwarded = scripted is None and parse_classification_prompt(request.last_user_text) is None
        if forwarded and self._answer_url:
            return (yield from self._forward_stream(request))
        out = self.generate(request, model_id, scripted)
        yield from words(out.text)
        return out

    def world_topics(self, labels: dict[str, str]) -> tuple[str, ...]:
        """WORLD_TOPICS less those the labels cover (see the module docstring); cached per
        label set, since every classification prompt of a configuration names the same labels."""
        key = tuple(sorted(labels.items()))
        if key not in self._world_cache:
            label_phrases = [
                self._minilm.embed(p) for d in labels.values() for p in topic_phrases(d)[1:]
            ]
            self._world_cache[key] = tuple(
                topic
                for topic in WORLD_TOPICS
                if not any(
                    float(self._minilm.embed(phrase) @ e) >= COVERED_SIMILARITY
                    for phrase in topic_phrases(topic)[1:]
                    for e in label_phrases
                )
            )
        return self._world_cache[key]

    def classify(self, labels: dict[str, str], question: str) -> str:
        none_labels = [label for label, d in labels.items() if any(h in d for h in _NONE_HINTS)]
        scores: dict[str, float] = {}
        query = self._minilm.embed(question)
        for label, description in labels.items():
            if label in none_labels:
                continue
            phrases = topic_phrases(description)
            sims = np.sort([float(self._minilm.embed(p) @ query) for p in phrases])[::-1]
            scores[label] = float(np.mean(sims[:2]))
        best = max(scores, key=scores.__getitem__)
        if none_labels:
            covered = {label: labels[label] for label in scores}
            world = max(
                (float(self._minilm.embed(t) @ query) for t in self.world_topics(covered)),
                default=-1.0,
            )
            if scores[best] < NONE_THRESHOLD or world > scores[best] + WORLD_MARGIN:
                return none_labels[0]
        return best

    @staticmethod
    def placeholder(question: str, model_id: str) -> str:
        shown = question if len(question) <= 200 else question[:197] + "..."
        return (
            f"[Offline Bedrock stand-in for {model_id}: no language model ran, so this is a "
            f'placeholder, not an answer.] Your question was: "{shown}". Deployed, {model_id} '
            "answers it here. For real local answers, start scripts/local.py with --answer-url "
            "pointing at an OpenAI-compatible server (Ollama, llama.cpp, vLLM)."
        )

    def _finish(self, request: ChatRequest, text: str) -> Generation:
        tokens = self.count(text)
        stop = "end_turn"
        if tokens > request.max_tokens:  # cut like a model that ran out of tokens
            words = text.split(" ")
            while words and self.count(" ".join(words)) > request.max_tokens:
                words.pop()
            text, tokens, stop = " ".join(words), self.count(" ".join(words)), "max_tokens"
        return Generation(text, self.input_tokens(request), tokens, stop)

    def _chat_payload(self, request: ChatRequest) -> dict:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [{"role": role, "content": text} for role, text in request.messages]
        payload = {
            "model": self._model_name(),
            "messages": messages,
            "max_tokens": request.max_tokens,
        }
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        return payload

    def _forward_stream(self, request: ChatRequest) -> Generator[str, None, Generation]:
        """Stream through the OpenAI-compatible server: ``"stream": true`` answers server-sent
        events, ``data: {chunk}`` lines up to ``data: [DONE]``; usage comes in the last chunk
        when ``stream_options.include_usage`` is honoured, else it is counted here."""
        payload = {
            **self._chat_payload(request), "stream": True,
            "stream_options": {"include_usage": True},
        }
        http_request = urllib.request.Request(
            f"{self._answer_url}/chat/completions",
            data=json.dumps(payload).encode("utf-8"),
            headers={"Content-Type": "application/json", "Accept": "text/event-stream"},
            method="POST",
        )
        parts: list[str] = []
        usage: dict = {}
        finish = None
        try:
            with urllib.request.urlopen(http_request, timeout=120) as response:
                for raw in response:
                    line = raw.decode("utf-8").strip()
                    if not line.startswith(_SSE_DATA):
                        continue
                    data = line[len(_SSE_DATA):].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or []:
                        finish = choice.get("finish_reason") or finish
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            parts.append(text)
                            yield text
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise BedrockError(
                "ServiceUnavailableException",
                f"the local answer server {self._answer_url} failed: {exc}",
            ) from exc
        text = "".join(parts)
        return Generation(
            text,
            int(usage.get("prompt_tokens") or self.input_tokens(request)),
            int(usage.get("completion_tokens") or self.count(text)),
            "max_tokens" if finish == "length" else "end_turn",
        )

    def _forward(self, request: ChatRequest) -> Generation:
        """Answer through the local OpenAI-compatible server at ``answer_url``."""
        reply = self._post_json("/chat/completions", self._chat_payload(request))
        try:
            choice = reply["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise BedrockError(
                "ModelErrorException", f"the local answer server returned no choices: {exc}"
            ) from exc
        usage = reply.get("usage") or {}
        stop = "max_tokens" if choice.get("finish_reason") == "length" else "end_turn"
        return Generation(
            text,
            int(usage.get("prompt_tokens") or self.input_tokens(request)),
            int(usage.get("completion_tokens") or self.count(text)),
            stop,
        )

    def _model_name(self) -> str:
        if self._answer_model is None:
            models = self._get_json("/models").get("data") or []
            if not models:
                raise BedrockError(
                    "ServiceUnavailableException",
                    f"the local answer server {self._answer_url} lists no models",
                )
            self._answer_model = str(models[0]["id"])
        return self._answer_model

    def _get_json(self, path: str) -> dict:
        return self._request(urllib.request.Request(f"{self._answer_url}{path}"))

    def _post_json(self, path: str, payload: dict) -> dict:
        return self._request(
            urllib.request.Request(
                f"{self._answer_url}{path}",
                data=json.dumps(payload).encode("utf-8"),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
        )

    def _request(self, request: urllib.request.Request) -> dict:
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read().decode("utf-8"))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise BedrockError(
                "ServiceUnavailableException",
                f"the local answer server {self._answer_url} failed: {exc}",
            ) from exc
