"""Bedrock Runtime's error shapes: the status code per error and the restJson1 error response.

botocore reads the error code from the ``x-amzn-ErrorType`` header (and ``__type`` in the body) and
the message from ``message``, so a boto3 client raises the same ``ClientError`` (and its modelled
exception class, e.g. ``client.exceptions.ThrottlingException``) as against real Bedrock.
"""

from __future__ import annotations

import json

ERROR_STATUS = {
    "ValidationException": 400,
    "ServiceQuotaExceededException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408,
    "ModelErrorException": 424,
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}

DEFAULT_MESSAGES = {
    "ValidationException": "The request is not valid.",
    "ServiceQuotaExceededException": "Your request exceeds the service quota for your account.",
    "AccessDeniedException": "You don't have access to the model with the specified model ID.",
    "ResourceNotFoundException": "The requested resource could not be found.",
    "ModelTimeoutException": "The model took too long to respond.",
    "ModelErrorException": "The model returned an error.",
    "ThrottlingException": "Too many requests, please wait before trying again.",
    "ModelNotReadyException": "The model is not ready to serve requests.",
    "InternalServerException": "The server encountered an internal error.",
    "ServiceUnavailableException": "The service is unavailable. Try again later.",
}


class BedrockError(Exception):
    """A Bedrock error response: ``code`` is the exception name, ``status`` its HTTP status."""

    def __init__(
        self, code: str, message: str | None = None, after_chunks: int | None = None
    ) -> None:
        if code not in ERROR_STATUS:
            raise ValueError(f"unknown Bedrock error {code!r}; known: {', '.join(ERROR_STATUS)}")
        self.code = code
        self.after_chunks = after_chunks  # inside a ConverseStream: after this many deltas
        self.message = message or DEFAULT_MESSAGES[code]
        super().__init__(f"{code}: {self.message}")

    @property
    def status(self) -> int:
        return ERROR_STATUS[self.code]

    def headers(self) -> dict[str, str]:
        return {
            "x-amzn-ErrorType": f"{self.code}:http://internal.amazon.com/coral/com.amazon.bedrock/"
        }

    def body(self) -> bytes:
        return json.dumps({"message": self.message}).encode("utf-8")


def malformed(path: str, problem: str) -> BedrockError:
    """The wording Bedrock uses when a model's native request body fails its schema."""
    return BedrockError(
        "ValidationException",
        f"Malformed input request: {path}: {problem}, please reformat your input and try again.",
    )
