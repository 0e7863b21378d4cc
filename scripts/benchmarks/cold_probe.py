"""One cold start in this fresh process: ``python cold_probe.py handler|stream|floor SPEC.json``.

Run by ``benchmarks.cold_start`` as a child process, once per measurement, so that nothing is
imported or cached before the clock starts. It imports as little as it can before taking the first
timestamp (``time`` only) and prints one JSON line: seconds to import and initialise, seconds for
the first request, their sum, and the process's CPU seconds (steadier on a busy machine).

* ``handler``: the real Lambda entry point, as the runtime loads it: ``AWS_LAMBDA_FUNCTION_NAME``
  is set, so ``llm_router.edge.handler`` builds the router at import (the init phase), then one API
  Gateway event goes through ``lambda_handler``.
* ``stream``: the streaming function (``POST /ask/stream``) as its runtime loop starts it:
  ``_HANDLER`` names ``llm_router.edge.stream_runtime.main``, the module builds the router in the
  init phase, then one event's stream is read to its ``done`` event (``first_delta``: seconds from
  the end of init to the first ``delta``). The Runtime API's HTTP exchange itself is left out.
* ``floor``: the original AWS sample's shape and nothing else: import boto3 (plus numpy and faiss
  when the router embeds), create the bedrock-runtime client, load the FAISS index, then replay
  the Bedrock calls the handler made for the same question (recorded by the stand-in), searching
  the index with the returned embedding.

Both get their event and context from plain dicts here, not from the project's helpers, so that
neither pays for an import the other does not.
"""

import time

T0 = time.perf_counter()

import json  # noqa: E402  (after the first timestamp on purpose)
import os  # noqa: E402
import sys  # noqa: E402


class _Context:
    """The attributes of a Lambda context that Powertools and the handler read."""

    function_name = "cold-start-benchmark"
    memory_limit_in_mb = 1024
    function_version = "$LATEST"
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:cold-start-benchmark"
    log_group_name = "/aws/lambda/cold-start-benchmark"
    log_stream_name = "cold"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _event(question: str) -> dict:
    headers = {"Content-Type": "application/json"}
    return {
        "resource": "/ask",
        "path": "/ask",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/ask",
            "httpMethod": "POST",
            "path": "/prod/ask",
            "stage": "prod",
            "requestId": "cold-start-benchmark",
            "identity": {"sourceIp": "127.0.0.1", "apiKeyId": None},
        },
        "body": json.dumps({"question": question}),
        "isBase64Encoded": False,
    }


def on_lambda_path(spec: dict) -> None:
    """The task root first, then the layers' python directories, as Lambda orders them."""
    sys.path[0:0] = [spec["lambdas_dir"], *spec.get("layer_dirs", ())]


def handler(spec: dict) -> dict:
    on_lambda_path(spec)
    from llm_router.edge.handler import lambda_handler

    initialised = time.perf_counter()
    response = lambda_handler(_event(spec["question"]), _Context())
    done = time.perf_counter()
    routing = json.loads(response["body"]).get("routing") or {}
    return {"init": initialised - T0, "first_request": done - initialised,
            "status": response["statusCode"], "cache": routing.get("cache")}


def stream(spec: dict) -> dict:
    on_lambda_path(spec)
    from llm_router.edge import init_phase
    from llm_router.edge.stream_runtime import StreamingRouterHandler

    streaming = StreamingRouterHandler(eager=init_phase.IN_LAMBDA)
    init_phase.finish()
    initialised = time.perf_counter()
    event = _event(spec["question"])
    event["resource"] = event["path"] = "/ask/stream"
    response = streaming.stream(event, _Context())
    first_delta = None
    for chunk in response.body:
        if first_delta is None and chunk.startswith(b"event: delta"):
            first_delta = time.perf_counter() - initialised
    done = time.perf_counter()
    return {"init": initialised - T0, "first_request": done - initialised,
            "first_delta": first_delta if first_delta is not None else done - initialised,
            "status": response.status}


def floor(spec: dict) -> dict:
    import boto3

    index = labels = np = None
    if spec.get("index_dir"):
        import faiss
        import numpy as np

        index = faiss.read_index(os.path.join(spec["index_dir"], "index.faiss"))
        with open(os.path.join(spec["index_dir"], "labels.json"), encoding="utf-8") as handle:
            labels = json.load(handle)
    client = boto3.client("bedrock-runtime", region_name=spec["region"],
                          endpoint_url=spec["endpoint_url"])
    initialised = time.perf_counter()
    for call in spec["calls"]:
        if call["api"] == "converse":
            client.converse(modelId=call["model_id"], **call["body"])
            continue
        response = client.invoke_model(modelId=call["model_id"], body=json.dumps(call["body"]),
                                       contentType="application/json", accept="application/json")
        payload = json.loads(response["body"].read())
        if index is not None and "embedding" in payload:
            vector = np.asarray([payload["embedding"]], dtype="float32")
            _, rows = index.search(vector, spec["k"])
            [labels[i] for i in rows[0] if i >= 0]  # the vote's input, as the sample's lookup
    done = time.perf_counter()
    return {"init": initialised - T0, "first_request": done - initialised, "status": 200}


def compiled_from_source() -> int:
    """Imported source modules whose bytecode was not usable (missing, another Python's, or a
    timestamp .pyc older than its source), so Python compiled them: counted after the timing."""
    from importlib.util import MAGIC_NUMBER

    count = 0
    for module in list(sys.modules.values()):
        spec = getattr(module, "__spec__", None)
        origin, cached = getattr(spec, "origin", None), getattr(spec, "cached", None)
        if not (isinstance(origin, str) and origin.endswith(".py") and cached):
            continue
        try:
            with open(cached, "rb") as handle:
                head = handle.read(16)
            source = os.stat(origin)
        except OSError:
            count += 1
            continue
        if head[:4] != MAGIC_NUMBER:
            count += 1
        elif not int.from_bytes(head[4:8], "little") & 1:  # timestamp-based: must match
            stamp = (int(source.st_mtime) & 0xFFFFFFFF, source.st_size & 0xFFFFFFFF)
            count += stamp != (int.from_bytes(head[8:12], "little"),
                               int.from_bytes(head[12:16], "little"))
    return count


if __name__ == "__main__":
    with open(sys.argv[2], encoding="utf-8") as spec_file:
        spec = json.load(spec_file)
    figures = {"handler": handler, "stream": stream, "floor": floor}[sys.argv[1]](spec)
    figures["total"] = figures["init"] + figures["first_request"]
    figures["cpu"] = time.process_time()  # the whole process's CPU, interpreter start included
    figures["compiled"] = compiled_from_source()
    sys.stdout.write("\n" + json.dumps(figures) + "\n")
