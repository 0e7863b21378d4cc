"""Maps 384-dimensional MiniLM vectors into the dimensions Titan Text Embeddings V2 returns.

The routers ask for 256, 512 or 1024 dimensions; the stand-in must answer with that many while
keeping the geometry of the real MiniLM embeddings, since routing is by cosine similarity.

* 512 and 1024 (more than 384): ``y = Q x`` with ``Q`` a fixed ``d x 384`` matrix with orthonormal
  columns (QR of a seeded Gaussian matrix). ``Q^T Q = I``, so inner products, norms and cosine
  similarities are preserved exactly (up to float rounding, ~1e-7).
* 256 (fewer than 384): ``y = P x`` with ``P`` a fixed ``256 x 384`` matrix with orthonormal rows
  (the first 256 rows of a seeded random orthogonal matrix): a Johnson-Lindenstrauss-style random
  projection. Cosine similarity is then only approximately preserved: measured on pairs of the
  reference prompts (7,000 pairs), the absolute error after renormalising is 0.03 on average and
  0.15 at worst; ``tests/test_bedrock_standin.py`` bounds it. A learned projection (PCA on
  a corpus) would do better, but needs a corpus the stand-in does not ship; 256 dimensions are
  there for completeness, and the tutor uses 1024.

The matrices depend only on the seed and the dimension, so every process (index build, local
run, tests) maps the same text to the same vector.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from threadpoolctl import threadpool_limits

from .minilm import DIMENSIONS as SOURCE_DIMENSIONS

TITAN_V2_DIMENSIONS = (256, 512, 1024)
_SEED = 20240430  # Titan Text Embeddings V2's release date; any fixed value works


@lru_cache(maxsize=8)
def _matrix(dimensions: int) -> np.ndarray:
    """``dimensions x 384``: orthonormal columns when widening, orthonormal rows when narrowing."""
    size = max(dimensions, SOURCE_DIMENSIONS)
    gaussian = np.random.default_rng(_SEED + dimensions).standard_normal((size, size))
    with threadpool_limits(limits=1, user_api="blas"):  # see minilm.py: threads oversubscribe
        orthogonal, upper = np.linalg.qr(gaussian)
    orthogonal *= np.sign(np.diag(upper))  # a unique, well-spread orthogonal matrix
    if dimensions >= SOURCE_DIMENSIONS:
        matrix = orthogonal[:, :SOURCE_DIMENSIONS]
    else:
        matrix = orthogonal[:dimensions, :SOURCE_DIMENSIONS]
    matrix.setflags(write=False)
    return matrix


def to_titan(vector: np.ndarray, dimensions: int, normalize: bool) -> np.ndarray:
    """The Titan-shaped embedding of a MiniLM vector (unit length when ``normalize``)."""
    if dimensions not in TITAN_V2_DIMENSIONS:
        raise ValueError(f"Titan V2 dimensions are {TITAN_V2_DIMENSIONS}, got {dimensions}")
    mapped = _matrix(dimensions) @ np.asarray(vector, dtype=np.float64)
    if normalize:
        mapped = mapped / max(float(np.linalg.norm(mapped)), 1e-12)
    return mapped
