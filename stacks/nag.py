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
    from stacks.router_api import RouterApi

APIGW_LOGS_POLICY = (
    "arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
)

NO_USER_AUTH = (
    "The router API has no end users to authenticate: callers present an API key bound to a "
    "usage plan (per-key throttle and daily quota from routes.json api.*), which is the access "
    "control this design chose; a Cognito or IAM authorizer would add an identity system the "
    "sample does not have."
)


def _acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def acknowledge_router_findings(router: RouterApi) -> None:
    _acknowledge(router.ask_method, "AwsSolutions-APIG4", NO_USER_AUTH)
    _acknowledge(router.ask_method, "AwsSolutions-COG4", NO_USER_AUTH)
    _acknowledge(
        router.api.deployment_stage,
        "AwsSolutions-APIG3",
        "No WAF web ACL: abuse is bounded by the required API key, the usage plan's throttle and "
        "daily quota and the request validator; a web ACL is an account-level cost decision left "
        "to the deployer.",
    )
    _acknowledge(
        router.api,
        f"AwsSolutions-IAM4[Policy::{APIGW_LOGS_POLICY}]",
        "The account-level role API Gateway uses to write access and execution logs; "
        "AmazonAPIGatewayPushToCloudWatchLogs is the AWS-documented policy for exactly that role.",
    )
    _acknowledge(
        router.function_role,
        "AwsSolutions-IAM5[Resource::*]",
        "Only X-Ray's xray:PutTraceSegments/PutTelemetryRecords (added by active tracing) use "
        "Resource '*': X-Ray has no resource-level permissions. Logs are limited to the function's "
        "log group and Bedrock to the configured model ARNs.",
    )
    _acknowledge(
        router.function,
        "AwsSolutions-L1",
        "The runtime is pinned in routes.json (lambda.runtime) because the layers' compiled wheels "
        "(numpy, faiss) are built for exactly that CPython; moving to a newer runtime is a "
        "one-line change there, and the layers rebuild for it.",
    )
