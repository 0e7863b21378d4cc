"""The secret that signs feedback tokens: one per router stack, read by its two functions.

The router function signs each answer's ``feedback_token`` with it and the feedback function
verifies them (:mod:`llm_router.governance.provenance`). Secrets Manager rather than an SSM
SecureString because CloudFormation can create and generate a Secrets Manager secret, not a
SecureString parameter. It is encrypted with the account's AWS-managed key (``aws/secretsmanager``),
which needs no ``kms:Decrypt`` grant, and each function may call exactly ``GetSecretValue`` on
exactly this secret. Not rotated: a rotation would void the tokens in circulation, and the secret
only proves that a feedback is about a real answer (acknowledged to cdk-nag in :mod:`stacks.nag`).
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

SECRET_ACTIONS = ("secretsmanager:GetSecretValue",)
SECRET_LENGTH = 64


def feedback_signing_secret(scope: Construct) -> secretsmanager.Secret:
    """A generated secret of 64 letters and digits, removed with the stack."""
    return secretsmanager.Secret(
        scope,
        "FeedbackSigningSecret",
        description="Signs and verifies the feedback tokens of this router's answers",
        generate_secret_string=secretsmanager.SecretStringGenerator(
            password_length=SECRET_LENGTH, exclude_punctuation=True
        ),
        removal_policy=RemovalPolicy.DESTROY,
    )


def grant_secret_value(secret: secretsmanager.ISecret, role: iam.IRole) -> None:
    """Exactly GetSecretValue on exactly this secret (``grant_read`` adds DescribeSecret)."""
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=list(SECRET_ACTIONS), resources=[secret.secret_arn])
    )
