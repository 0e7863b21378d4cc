"""Build the semantic router's reference index with the configured embedding model.

    python scripts/build_index.py [--routes FILE] [--out DIR] [--embeddings auto|bedrock|stand-in]

Without ``--out`` the index goes to :func:`default_index_dir`: one directory per routes content
and embedding source under ``.build/semantic-index/``, the one ``evaluate.py``, ``local.py`` and
``resilience.py`` read, so an index built here is the one they use (and two routes files never
overwrite each other's index).

``bedrock`` embeds the reference prompts with the configured model in your AWS account (the index a
deployed router needs). ``stand-in`` embeds them with the offline Bedrock stand-in (local MiniLM
vectors mapped to the Titan dimensions), for tests and the local run; the manifest records it and a
Lambda talking to real Bedrock refuses such an index. ``auto`` uses Bedrock when AWS credentials are
configured and the stand-in otherwise, so `cdk synth` works offline while `cdk deploy` (which needs
credentials anyway) ships a real index. The CDK layer bundling calls :func:`ensure_index`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import cli
from llm_router.config import ConfigError, RoutesConfig, load_routes
from llm_router.config.topic_bank import load_topic_bank
from llm_router.decision.embeddings import TitanEmbedder
from llm_router.decision.normalize import routing_text
from llm_router.decision.semantic_index import Manifest, build_index, is_fresh
from llm_router.models.bedrock import BedrockFailure, runtime_client
from routes_file import add_routes_argument, use_routes_file

from layers import REPO_ROOT

SOURCES = ("auto", "bedrock", "stand-in")
# Embedded again before an existing index is reused, and compared with what it gave at build time.
PROBE_TEXT = "What year did World War II end?"
PROBE_FILE = "embedding-probe.json"
PROBE_TOLERANCE = 1e-3
STANDIN_SOURCE = "offline-stand-in"
BEDROCK_SOURCE = "bedrock"


INDEX_ROOT = REPO_ROOT / ".build" / "semantic-index"


def default_index_dir(config: RoutesConfig, source: str) -> Path:
    """Where the scripts keep the index of ``config`` embedded by ``source`` (resolved first).

    Keyed by what the index is made of (the labelled reference prompts and the embedding setup,
    as the manifest records them), not by the file's name: editing a prompt gives a new
    directory, and the same content under another name reuses the index.
    """
    embedding = config.embedding
    key = json.dumps(
        [
            config.reference_prompts_hash(),
            embedding.model_id,
            embedding.dimensions,
            embedding.normalize,
        ]
    )
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    return INDEX_ROOT / f"{resolve_source(source)}-{digest}"


class IndexBuildError(RuntimeError):
    """The index could not be built; the message says what to fix."""


def aws_credentials_available() -> bool:
    import boto3

    return boto3.Session().get_credentials() is not None


def resolve_source(source: str) -> str:
    """The manifest's name for a source: ``bedrock`` or ``offline-stand-in``.

    Takes the command-line names (``auto``, ``bedrock``, ``stand-in``) and the resolved names
    themselves, so callers holding either pass it on as it is.
    """
    if source in (BEDROCK_SOURCE, STANDIN_SOURCE):
        return source
    if source not in SOURCES:
        raise IndexBuildError(f"unknown embeddings source {source!r}; use one of {SOURCES}")
    if source == "auto":
        return BEDROCK_SOURCE if aws_credentials_available() else STANDIN_SOURCE
    return STANDIN_SOURCE


@contextlib.contextmanager
def _embedder(
    config: RoutesConfig, source: str, region: str | None
) -> Iterator[tuple[TitanEmbedder, Callable[[list[str]], None]]]:
    """The embedder, and a function that precomputes a list of texts where that helps (the
    stand-in computes them on every core into its cache; Bedrock is called one text at a time
    by the build, so there it does nothing)."""
    if source == STANDIN_SOURCE:
        from bedrock_standin import StandInServer

        with StandInServer() as server:
            client = runtime_client(
                region="us-east-1",
                endpoint_url=server.url,
                credentials=("stand-in", "stand-in"),
            )
            yield (
                TitanEmbedder(client, config.embedding),
                lambda texts: server.precompute_embeddings(texts, config.embedding.normalize),
            )
        return
    if not aws_credentials_available():
        raise IndexBuildError(
            "Building the semantic index embeds the reference prompts with "
            f"{config.embedding.model_id} in your AWS account, but no AWS credentials were found. "
            "Configure credentials (aws configure / AWS_PROFILE / SSO) for the account you deploy "
            "to, or build an offline index with --embeddings stand-in (not deployable)."
        )
    yield (
        TitanEmbedder(runtime_client(region=region, endpoint_url=None), config.embedding),
        lambda _texts: None,
    )


def ensure_index(
    config: RoutesConfig,
    out_dir: Path,
    source: str = "auto",
    region: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Manifest:
    """Build the index into ``out_dir`` unless a fresh one for this configuration is there.

    Fresh means the manifest matches the configuration *and* the embedder still embeds a probe
    text as it did when the index was built: the manifest cannot see a changed embedder (a new
    stand-in, a model update), and an index of other vectors routes silently wrong.
    """
    say = progress or (lambda _msg: None)
    resolved = resolve_source(source)
    rows = len(config.reference_prompts())
    step = max(1, rows // 10)

    def tick(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            say(f"  embedded {done}/{total}")

    try:
        with _embedder(config, resolved, region) as (embedder, precompute):
            if is_fresh(out_dir, config, resolved) and _probe_matches(out_dir, embedder):
                say(f"semantic index in {out_dir} is up to date")
                return Manifest.read(out_dir)
            say(
                f"building semantic index: {rows} reference prompts with "
                f"{config.embedding.model_id} ({resolved})"
            )
            bank = load_topic_bank() if config.out_of_scope.topic_bank else {}
            precompute(
                [routing_text(prompt) for _, prompt in config.reference_prompts()]
                + [routing_text(q) for questions in bank.values() for q in questions]
            )
            manifest = build_index(config, embedder, out_dir, resolved, progress=tick)
            _write_probe(out_dir, embedder)
            return manifest
    except BedrockFailure as failure:
        hint = ""
        if failure.code in ("AccessDeniedException", "ResourceNotFoundException"):
            hint = (
                f" Enable model access for {config.embedding.model_id} in the Amazon Bedrock "
                "console (Model access) of the region you deploy to, and allow "
                "bedrock:InvokeModel on it for your deploying identity."
            )
        raise IndexBuildError(f"could not build the semantic index: {failure}.{hint}") from failure


def _probe_vector(embedder: TitanEmbedder) -> list[float]:
    return [round(float(v), 5) for v in embedder.embed(PROBE_TEXT).vector]


def _write_probe(directory: Path, embedder: TitanEmbedder) -> None:
    probe = {"text": PROBE_TEXT, "vector": _probe_vector(embedder)}
    (directory / PROBE_FILE).write_text(json.dumps(probe), encoding="utf-8")


def _probe_matches(directory: Path, embedder: TitanEmbedder) -> bool:
    try:
        stored = json.loads((directory / PROBE_FILE).read_text(encoding="utf-8"))["vector"]
    except (OSError, KeyError, TypeError, json.JSONDecodeError):
        return False
    current = _probe_vector(embedder)
    return (
        len(stored) == len(current)
        and max(abs(a - b) for a, b in zip(stored, current, strict=True)) < PROBE_TOLERANCE
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_routes_argument(parser)
    parser.add_argument(
        "--out", type=Path, default=None,
        help="index directory (default: .build/semantic-index/<source>-<routes content hash>)",
    )
    parser.add_argument(
        "--embeddings", choices=SOURCES, default="auto",
        help="who embeds the reference prompts: Titan in your account, the offline stand-in, "
        "or auto (Bedrock when credentials are found)",
    )
    parser.add_argument("--region", default=None, help="AWS region for Bedrock embeddings")
    parser.add_argument("--preset", default=None, help="routes preset (default: active_preset)")
    args = parser.parse_args(argv)
    try:
        use_routes_file(args.routes)
        config = load_routes(preset=args.preset)
        source = resolve_source(args.embeddings)
        out = args.out or default_index_dir(config, source)
        manifest = ensure_index(config, out, source, args.region, print)
    except (IndexBuildError, ConfigError) as exc:
        return cli.error(exc)
    print(
        f"{manifest.vectors} vectors, {manifest.dimensions} dimensions, "
        f"{manifest.embedding_source} embeddings -> {out}"
    )
    return 0


if __name__ == "__main__":
    cli.run(main)
