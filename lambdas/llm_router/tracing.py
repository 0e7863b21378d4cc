"""X-Ray subsegments for the router's stages (classification, embedding, search, answer).

``with subsegment("classification"):`` records the block as a Powertools Tracer subsegment
(``## classification``) when tracing is on, so X-Ray shows where a request's time goes.

Why not simply ``Tracer()`` at module level: creating a Tracer imports the X-Ray SDK and patches
botocore, tens of milliseconds of cold start, also when tracing is off (local runs, tests,
``POWERTOOLS_TRACE_DISABLED=true``). Here the decision is a few environment lookups per call, and
the Tracer is created (and botocore patched, so Bedrock calls get their own subsegments) at the
first traced block of a sampled invocation only. When tracing is off, the invocation is not
sampled, or the X-Ray SDK is not installed (the runtime layer needs
``aws-lambda-powertools[tracer]``), every block runs untraced at the cost of a function call.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

TRACE_DISABLED_ENV = "POWERTOOLS_TRACE_DISABLED"
TRACE_HEADER_ENV = "_X_AMZN_TRACE_ID"  # set by the Lambda runtime for each invocation
_TRUE = {"1", "true", "yes", "on", "y", "t"}
log = logging.getLogger(__name__)

_tracer: Any = None
_unavailable = False


class Span:
    """What a traced block may add: annotations (indexed, searchable) and metadata."""

    def __init__(self, segment: Any = None) -> None:
        self._segment = segment

    @property
    def recording(self) -> bool:
        return self._segment is not None

    def annotate(self, key: str, value: str | int | float | bool) -> None:
        if self._segment is not None:
            self._segment.put_annotation(key=key, value=value)

    def metadata(self, key: str, value: Any) -> None:
        if self._segment is not None:
            self._segment.put_metadata(key=key, value=value)


_NOT_RECORDING = Span()


def tracing_enabled() -> bool:
    """Tracing is on in Lambda (not SAM local) unless POWERTOOLS_TRACE_DISABLED says otherwise."""
    if os.environ.get(TRACE_DISABLED_ENV, "").strip().lower() in _TRUE:
        return False
    if os.environ.get("AWS_SAM_LOCAL", "").strip().lower() in _TRUE:
        return False
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def _get_tracer() -> Any:
    global _tracer, _unavailable
    if _tracer is None and not _unavailable:
        try:
            from aws_lambda_powertools import Tracer

            _tracer = Tracer(patch_modules=["botocore"])
        except ImportError as exc:  # no X-Ray SDK in the layer: trace nothing, say so once
            _unavailable = True
            log.warning("tracing is on but unavailable: %s", exc)
    return _tracer


def sampled_out() -> bool:
    """X-Ray does not sample this invocation (``Sampled=0`` in its trace header): its subsegments
    would be recorded nowhere, so the Tracer need not exist for it, nor cost its first creation."""
    return "Sampled=0" in os.environ.get(TRACE_HEADER_ENV, "")


@contextlib.contextmanager
def subsegment(name: str) -> Iterator[Span]:
    """Trace the block as subsegment ``## name`` when tracing is on and the invocation sampled;
    otherwise just run it."""
    tracer = _get_tracer() if tracing_enabled() and not sampled_out() else None
    if tracer is None:
        yield _NOT_RECORDING
        return
    with tracer.provider.in_subsegment(name=f"## {name}") as segment:
        yield Span(segment)


def reset() -> None:
    """Forget the Tracer (tests switch tracing on and off)."""
    global _tracer, _unavailable
    _tracer = None
    _unavailable = False
