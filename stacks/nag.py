"""cdk-nag (AwsSolutions) findings this design accepts, each acknowledged with its reason.

cdk-nag 3 reports through CDK's policy validation; a finding is acknowledged with
``Validations.of(construct).acknowledge(...)`` on the narrowest construct it concerns, by its id
(``Rule`` or ``Rule[finding]``), so an unexpected new finding elsewhere still fails the synth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

if TYPE_CHECKING:
    from stacks.feedback_api import FeedbackEndpoint
    from stacks.router_api import RouterApi
    from stacks.stream_api import StreamingEndpoint

APIGW_LOGS_POLICY = (
    "arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
)

NO_USER_AUTH = (
    "The router API has no end users to authenticate: callers present an API key bound to a "
    "usage plan (per-key throttle and daily quota from routes.json api.*), which is the access "
    "control this design chose; a Cognito or IAM authorizer would add an identity system the "
    "sample does not have."
)
XRAY_ONLY_WILDCARD = (
    "Only X-Ray's xray:PutTraceSegments/PutTelemetryRecords (added by active tracing) use "
    "Resource '*': X-Ray has no resource-level permissions. Logs are limited to the function's "
    "log group, DynamoDB to the stack's own tables and Bedrock to the configured model ARNs."
)
PINNED_RUNTIME = (
    "The runtime is pinned in routes.json (lambda.runtime) because the layers' compiled wheels "
    "(numpy, faiss) are built for exactly that CPython; moving to a newer runtime is a "
    "one-line change there, and the layers rebuild for it."
)
NO_PITR = (
    "Sample data that expires by TTL within days (daily spend counters, conversations, user "
    "feedback): "
    "point-in-time recovery would cost more than the data is worth; the table is removed with "
    "the stack."
)
NO_WAF = (
    "No WAF web ACL by default (routes.json deployment.waf.enabled or -c waf=true adds one): "
    "abuse is bounded by the required API key, the usage plans' throttle and daily quota, the "
    "request validator, the function's reserved concurrency and the daily budget; a web ACL's "
    "monthly fee is left to the deployer."
)


def _acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def acknowledge_router_findings(
    router: RouterApi, feedback: FeedbackEndpoint, stream: StreamingEndpoint, *, waf: bool
) -> None:
    """The findings of a router stack; APIG3 (no WAF) only when the web ACL is off."""
    for method in (router.ask_method, feedback.method, stream.method):
        _acknowledge(method, "AwsSolutions-APIG4", NO_USER_AUTH)
        _acknowledge(method, "AwsSolutions-COG4", NO_USER_AUTH)
    if not waf:
        _acknowledge(router.api.deployment_stage, "AwsSolutions-APIG3", NO_WAF)
    _acknowledge(
        router.api,
        f"AwsSolutions-IAM4[Policy::{APIGW_LOGS_POLICY}]",
        "The account-level role API Gateway uses to write access and execution logs; "
        "AmazonAPIGatewayPushToCloudWatchLogs is the AWS-documented policy for exactly that role.",
    )
    for role in (router.function_role, feedback.function_role, stream.function_role):
        _acknowledge(role, "AwsSolutions-IAM5[Resource::*]", XRAY_ONLY_WILDCARD)
    for function in (router.function, feedback.function, stream.function):
        _acknowledge(function, "AwsSolutions-L1", PINNED_RUNTIME)
    for table in (
        router.budget_table, router.cache_table, router.conversation_table, feedback.table
    ):
        if table is not None:
            _acknowledge(table, "AwsSolutions-DDB3", NO_PITR)
    _acknowledge(
        router.feedback_secret,
        "AwsSolutions-SMG4",
        "The feedback-token signing secret is not rotated: a rotation would void the tokens in "
        "circulation, and the secret only proves that a feedback is about a real answer.",
    )
