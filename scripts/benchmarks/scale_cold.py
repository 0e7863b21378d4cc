"""The scale benchmark's cold start: the init phase of the semantic Lambda, step by step, in a
fresh Python process (imports of numpy, faiss and ``llm_router.edge.handler``; boto3 client
creation;
``load_routes``; ``load_index``), for one index directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .fresh_process import run_fresh
from .index_cache import EMBEDDING_SOURCE, REPO_ROOT

# Run with ``python -c``: the init phase of the Lambda, step by step. faiss is imported by
# ``load_index`` in the Lambda; it is timed on its own here so the import split is visible.
COLD_START_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy
t1 = time.perf_counter()
import faiss
t2 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import llm_router.edge.handler
t3 = time.perf_counter()
from llm_router.models.bedrock import runtime_client
client = runtime_client(region="us-east-1")
t4 = time.perf_counter()
from pathlib import Path
from llm_router.config import load_routes
from llm_router.decision.semantic_index import load_index
directory = Path(sys.argv[2])
config = load_routes(directory / "routes.json")
t5 = time.perf_counter()
index = load_index(directory, config, sys.argv[3])
t6 = time.perf_counter()
print(json.dumps({
    "import_numpy": t1 - t0, "import_faiss": t2 - t1, "import_handler": t3 - t2,
    "imports": t3 - t0, "client": t4 - t3, "routes_load": t5 - t4, "index_load": t6 - t5,
    "vectors": index.index.ntotal,
}))
"""



def measure_cold_start(directory: Path) -> dict[str, float]:
    """Imports, client creation, routes and index load, timed in a fresh Python process."""
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_FUNCTION_NAME"}
    command = [
        sys.executable,
        "-c",
        COLD_START_PROBE,
        str(REPO_ROOT / "lambdas"),
        str(directory),
        EMBEDDING_SOURCE,
    ]
    figures = run_fresh(command, env, timeout=900, what="cold-start probe")
    figures.pop("output")
    return figures
