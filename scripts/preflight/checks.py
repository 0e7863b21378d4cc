"""A preflight check's result, and the error text the checks quote."""

from __future__ import annotations

from dataclasses import dataclass

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok, warn, fail or skip
    detail: str
    fix: str | None = None


def error_code(exc: Exception) -> tuple[str, str]:
    """(code, message) of a botocore error, or of anything else."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return str(error.get("Code", type(exc).__name__)), str(error.get("Message", exc))
    return type(exc).__name__, str(exc)
