"""The semantic router's reference index as layer content (-> /opt/semantic-index in Lambda).

Shipping the index in the layer, built at synth time, keeps the Lambda cold start free of
embedding calls and makes the deployed index exactly the one the stack was synthesized with. The
index depends only on the embedding setup and the labelled reference prompts, so those (and where
the vectors come from) form its cache key: editing a prompt rebuilds it, a code change does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layers import ensure_import_paths
from layers.build import Progress

ensure_import_paths()

if TYPE_CHECKING:
    from llm_router.config import RoutesConfig

INDEX_DIR = "semantic-index"
LAMBDA_INDEX_DIR = (
    f"/opt/{INDEX_DIR}"  # where Lambda extracts it; the function's SEMANTIC_INDEX_DIR
)


@dataclass(frozen=True)
class SemanticIndexContent:
    config: RoutesConfig
    embedding_source: str  # resolved: "bedrock" or "offline-stand-in"
    region: str | None = None  # Bedrock region for the embeddings (None: the AWS default)

    @classmethod
    def resolve(
        cls, config: RoutesConfig, source: str, region: str | None = None
    ) -> SemanticIndexContent:
        """Pin down "auto" once (credentials present -> Bedrock) so key and build agree."""
        from build_index import resolve_source

        return cls(config, resolve_source(source), region)

    @property
    def is_deployable(self) -> bool:
        """A stand-in index is refused by a Lambda that talks to real Bedrock."""
        return self.embedding_source == "bedrock"

    def cache_inputs(self) -> Mapping[str, Any]:
        import faiss
        from build_index import PROBE_FILE
        from llm_router.decision import linear_head
        from llm_router.decision.semantic_index import (
            INDEX_FILE,
            LABELS_FILE,
            MANIFEST_FILE,
            MANIFEST_VERSION,
        )

        embedding = self.config.embedding
        return {
            "kind": "semantic-index",
            "manifest_version": MANIFEST_VERSION,
            "embedding_model_id": embedding.model_id,
            "dimensions": embedding.dimensions,
            "normalize": embedding.normalize,
            "reference_prompts_sha256": self.config.reference_prompts_hash(),
            "embedding_source": self.embedding_source,
            "faiss_version": faiss.__version__,
            # The head is trained in the build: its settings are inputs of the content too.
            "head": {
                "version": linear_head.HEAD_VERSION,
                "l2": linear_head.L2,
                "iterations": linear_head.ITERATIONS,
                "folds": linear_head.CALIBRATION_FOLDS,
                "clusters_per_fold": linear_head.CLUSTERS_PER_FOLD,
                "cv_repeats": linear_head.CV_REPEATS,
            },
            "files": [  # the layout shipped
                INDEX_FILE, LABELS_FILE, MANIFEST_FILE, PROBE_FILE, linear_head.HEAD_FILE,
            ],
        }

    def write(self, layer_root: Path, progress: Progress) -> Mapping[str, Any]:
        from build_index import IndexBuildError, ensure_index

        try:
            manifest = ensure_index(
                self.config,
                layer_root / INDEX_DIR,
                source=self.embedding_source,
                region=self.region,
                progress=progress,
            )
        except IndexBuildError as exc:
            raise IndexBuildError(
                f"{exc} (CDK: -c semanticIndexEmbeddings=stand-in synthesizes offline, but that "
                "index is not deployable)"
            ) from exc
        return {"kind": "semantic-index", "path": INDEX_DIR, "manifest": asdict(manifest)}
