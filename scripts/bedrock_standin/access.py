"""Bedrock's authorization, offline: a caller may invoke a model only where its role allows it.

AWS checks every ``InvokeModel``/``Converse`` call against the caller's identity policy before
the model runs: the foundation model's ARN (``arn:aws:bedrock:REGION::foundation-model/ID``), or,
for a cross-region inference profile, the profile's ARN *and* the foundation model in the region
the profile routes the request to. A role that misses one of those destinations fails only some
of the time, in AWS, which the router would take for a flaky model and fail over. Offline the
stand-in demands all of them at once, so such a grant fails every call, in a test.

Callers are told apart by the access key id of their SigV4 signature: the local run and the tests
register each function role's assumed-role key with its policy (``POST /_standin/identities``).
A key never registered is not checked (the stand-in predates roles; tests that do not model IAM
keep working). Policies are evaluated by moto's IAM policy engine, the one moto enforces for
DynamoDB in the same runs, rather than by a second evaluator written here.

The destinations are Bedrock's, not this project's configuration: the stand-in plays the
service, so a configuration that grants the wrong regions is refused here as it would be there.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from typing import Any

from .errors import BedrockError

ACCOUNT = "123456789012"  # moto's default account, the one the local run's roles live in
_ACCESS_KEY = re.compile(r"Credential=([^/]+)/")
# Where a geographic inference profile sends requests from a source region in its geography
# (Amazon Bedrock User Guide, "Supported Regions and models for inference profiles"). The
# broadest published set per prefix: a grant must cover every region a request can land in.
PROFILE_DESTINATIONS: Mapping[str, tuple[str, ...]] = {
    "us": ("us-east-1", "us-east-2", "us-west-2"),
    "eu": ("eu-central-1", "eu-west-1", "eu-west-3", "eu-north-1"),
    "apac": ("ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1",
             "ap-southeast-2"),
}
# The IAM action each API needs (Converse is authorized as InvokeModel, ConverseStream as
# InvokeModelWithResponseStream: Bedrock User Guide, "Converse API" prerequisites).
API_ACTIONS = {
    "invoke": "bedrock:InvokeModel",
    "converse": "bedrock:InvokeModel",
    "invoke-with-response-stream": "bedrock:InvokeModelWithResponseStream",
    "converse-stream": "bedrock:InvokeModelWithResponseStream",
}


def required_resources(model_id: str, region: str, account: str = ACCOUNT) -> list[str]:
    """Every ARN a call to ``model_id`` from ``region`` must be allowed on."""
    prefix, _, base = model_id.partition(".")
    if prefix in PROFILE_DESTINATIONS and base:
        return [
            f"arn:aws:bedrock:{region}:{account}:inference-profile/{model_id}",
            *(
                f"arn:aws:bedrock:{destination}::foundation-model/{base}"
                for destination in PROFILE_DESTINATIONS[prefix]
            ),
        ]
    return [f"arn:aws:bedrock:{region}::foundation-model/{model_id}"]


class AccessControl:
    """Registered identities (access key id -> role name and policy) and the check of a call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._identities: dict[str, tuple[str, dict[str, Any]]] = {}

    def register(self, access_key_id: str, role: str, policy: dict[str, Any]) -> None:
        if not isinstance(policy, dict) or "Statement" not in policy:
            raise ValueError("policy must be an IAM policy document with a Statement")
        with self._lock:
            self._identities[access_key_id] = (role, policy)

    def reset(self) -> None:
        with self._lock:
            self._identities.clear()

    def check(self, authorization: str, api: str, model_id: str, region: str) -> None:
        """Raise Bedrock's AccessDeniedException when a registered caller may not make the call."""
        match = _ACCESS_KEY.search(authorization)
        with self._lock:
            identity = self._identities.get(match.group(1)) if match else None
        if identity is None:
            return
        role, policy = identity
        action = API_ACTIONS[api]
        for resource in required_resources(model_id, region):
            if not _permitted(policy, action, resource):
                raise BedrockError(
                    "AccessDeniedException",
                    f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{role}/router is not authorized "
                    f"to perform: {action} on resource: {resource} because no identity-based "
                    f"policy allows the {action} action",
                )


def _permitted(policy: dict[str, Any], action: str, resource: str) -> bool:
    from moto.iam.access_control import IAMPolicy, PermissionResult

    result = IAMPolicy(json.dumps(policy)).is_action_permitted(action, resource)
    return result == PermissionResult.PERMITTED
