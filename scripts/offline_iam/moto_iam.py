"""moto's IAM enforcement, switched on for a local run or a test, with roles to assume.

moto authorizes a request against the caller's IAM policies once its count of unauthenticated
requests (``INITIAL_NO_AUTH_ACTION_COUNT``) is used up; :func:`enforced` sets that count to zero
for a block and restores it after, so set-up (tables, roles) runs first and everything after is
checked. These gaps of moto are closed here, each stricter, never more lenient:

* moto authorizes DynamoDB requests against the resource ``*`` (its handler does not say which
  table), so a grant on one table could not be told from a grant on another, and a policy scoped
  to a table ARN (as CDK writes them) would match nothing. :func:`resolve_dynamodb_tables` gives
  the DynamoDB handler the ARN of the request's table, as moto's SQS handler does for queues.
* Secrets Manager likewise: :func:`resolve_secret_arns` authorizes a request against its
  secret's full ARN.
* Authorization is process-wide in moto (a module setting), so :func:`enforced` is a context
  manager that always restores it: a test that enforces IAM leaves later tests as it found them.
"""

from __future__ import annotations

import collections
import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_LOCK = threading.Lock()
# What moto refused, newest last (bounded: a local run may be left open): tests assert on it.
DENIALS: collections.deque[str] = collections.deque(maxlen=1000)
_TRUST_ANYONE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
)
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def as_client_kwargs(self) -> dict[str, str]:
        kwargs = {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
        }
        if self.session_token:
            kwargs["aws_session_token"] = self.session_token
        return kwargs


def _json_body(response: Any) -> dict[str, Any] | None:
    """A moto JSON-protocol request's body as a dict (None: not JSON). DynamoDB and Secrets
    Manager both name their resource in it, so both resolvers read it the same way."""
    body = response.body
    if isinstance(body, dict):
        return body
    try:
        return json.loads(body or "{}")
    except ValueError:
        return None


def resolve_dynamodb_tables() -> None:
    """Make moto authorize each DynamoDB request against its table's ARN (idempotent)."""
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler, "_router_table_arns", False):
        return

    def _determine_resource(self: Any) -> str:
        body = _json_body(self)
        if body is None:
            return "*"  # no table named: a table-scoped grant matches nothing (strict)
        table = body.get("TableName") or next(iter(body.get("RequestItems") or {}), None)
        if not table:
            return "*"
        return f"arn:aws:dynamodb:{self.region}:{self.current_account}:table/{table}"

    authorize = DynamoHandler._authenticate_and_authorize_normal_action

    def _authorize_as_dynamodb(self: Any, resource: str = "*") -> None:
        """DynamoDB's own denial (400, AccessDeniedException in JSON), not moto's generic XML."""
        from moto.core.exceptions import AccessDeniedError
        from moto.dynamodb.exceptions import DynamodbException

        try:
            authorize(self, resource)
        except AccessDeniedError as denied:
            action = f"dynamodb:{self._get_action()}"
            DENIALS.append(f"{action} on {resource}")
            raise DynamodbException(
                "com.amazonaws.dynamodb.v20120810#AccessDeniedException",
                f"{denied.message} on resource: {resource} because no identity-based policy "
                f"allows the {action} action",
            ) from denied

    DynamoHandler._determine_resource = _determine_resource
    DynamoHandler._authenticate_and_authorize_normal_action = _authorize_as_dynamodb
    DynamoHandler._router_table_arns = True


def resolve_secret_arns() -> None:
    """Make moto authorize each Secrets Manager request against its secret's full ARN, as AWS
    does (moto uses ``*``, which a grant scoped to the secret's ARN, as CDK writes it, would
    never match); an unknown secret is checked against the ARN it was named by (idempotent)."""
    from moto.secretsmanager.responses import SecretsManagerResponse

    if getattr(SecretsManagerResponse, "_router_secret_arns", False):
        return

    def _determine_resource(self: Any) -> str:
        body = _json_body(self)
        if body is None:
            return "*"
        secret_id = body.get("SecretId")
        if not isinstance(secret_id, str) or not secret_id:
            return "*"
        secret = self.backend.secrets.get(secret_id)
        return secret.arn if secret is not None else secret_id

    SecretsManagerResponse._determine_resource = _determine_resource
    SecretsManagerResponse._router_secret_arns = True


@contextlib.contextmanager
def enforced() -> Iterator[None]:
    """moto checks every request of the block against the caller's IAM policies."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    resolve_dynamodb_tables()
    resolve_secret_arns()
    with _LOCK:
        before = settings.INITIAL_NO_AUTH_ACTION_COUNT
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0
    try:
        yield
    finally:
        with _LOCK:
            settings.INITIAL_NO_AUTH_ACTION_COUNT = before


def _client(service: str, endpoint_url: str, region: str, credentials: Credentials) -> Any:
    import boto3

    return boto3.client(
        service, endpoint_url=endpoint_url, region_name=region, **credentials.as_client_kwargs()
    )


def admin_credentials(endpoint_url: str, region: str, bootstrap: Credentials) -> Credentials:
    """An IAM user allowed everything: the operator's key for a local run (feedback.py, set-up).

    Made with ``bootstrap`` (any key) before enforcement starts."""
    iam = _client("iam", endpoint_url, region, bootstrap)
    name = f"local-operator-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name, PolicyName="operator", PolicyDocument=json.dumps(ADMIN_POLICY)
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def assume_role(
    endpoint_url: str, region: str, admin: Credentials, name: str, policy: dict[str, Any]
) -> Credentials:
    """Create role ``name`` with ``policy`` as its only permissions, and assume it."""
    iam = _client("iam", endpoint_url, region, admin)
    role_name = f"{name}-{uuid.uuid4().hex[:8]}"[:64]
    arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=_TRUST_ANYONE)["Role"][
        "Arn"
    ]
    iam.put_role_policy(
        RoleName=role_name, PolicyName="function", PolicyDocument=json.dumps(policy)
    )
    sts = _client("sts", endpoint_url, region, admin)
    session = sts.assume_role(RoleArn=arn, RoleSessionName="function")["Credentials"]
    return Credentials(session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"])
