"""Credentials, region and the CDK bootstrap: what a deploy needs before any model."""

from __future__ import annotations

from typing import Any

from .checks import FAIL, OK, WARN, Check, error_code

BOOTSTRAP_STACK = "CDKToolkit"
BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
MIN_BOOTSTRAP_VERSION = 6  # what the CDK's default stack synthesizer requires
USABLE_STACK_STATES = frozenset(
    {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"}
)


def check_identity(sts: Any) -> tuple[Check, str | None]:
    try:
        identity = sts.get_caller_identity()
    except Exception as exc:  # NoCredentialsError, ExpiredToken, InvalidClientTokenId, ...
        code, message = error_code(exc)
        return (
            Check(
                "AWS credentials",
                FAIL,
                f"{code}: {message}",
                "Configure credentials for the account you deploy to: `aws configure`, "
                "AWS_PROFILE=<profile> or `aws sso login`.",
            ),
            None,
        )
    account = identity["Account"]
    return Check("AWS credentials", OK, f"account {account} as {identity['Arn']}"), account


def check_bootstrap(cloudformation: Any, ssm: Any, account: str, region: str) -> list[Check]:
    bootstrap = f"Run `npx cdk bootstrap aws://{account}/{region}`."
    try:
        stack = cloudformation.describe_stacks(StackName=BOOTSTRAP_STACK)["Stacks"][0]
    except Exception as exc:
        code, message = error_code(exc)
        if "does not exist" in message:
            return [
                Check("CDK bootstrap", FAIL, f"no {BOOTSTRAP_STACK} stack in {region}", bootstrap)
            ]
        return [Check("CDK bootstrap", FAIL, f"{code}: {message}", None)]
    status = stack["StackStatus"]
    if status in USABLE_STACK_STATES:
        checks = [Check("CDK bootstrap", OK, f"{BOOTSTRAP_STACK} is {status}")]
    elif status.endswith("_IN_PROGRESS"):
        return [Check("CDK bootstrap", WARN, f"{BOOTSTRAP_STACK} is {status}", "Wait for it.")]
    else:
        return [
            Check(
                "CDK bootstrap",
                FAIL,
                f"{BOOTSTRAP_STACK} is {status}",
                f"Delete the {BOOTSTRAP_STACK} stack (see its events for why it failed), then "
                + bootstrap[0].lower()
                + bootstrap[1:],
            )
        ]
    checks.append(check_bootstrap_version(ssm, bootstrap))
    return checks


def check_bootstrap_version(ssm: Any, bootstrap: str) -> Check:
    name = "CDK bootstrap version"
    try:
        value = ssm.get_parameter(Name=BOOTSTRAP_VERSION_PARAMETER)["Parameter"]["Value"]
    except Exception as exc:
        code, message = error_code(exc)
        if code == "ParameterNotFound":
            return Check(name, FAIL, f"{BOOTSTRAP_VERSION_PARAMETER} is missing", bootstrap)
        return Check(name, WARN, f"cannot read {BOOTSTRAP_VERSION_PARAMETER}: {code}: {message}")
    if not value.isdigit() or int(value) < MIN_BOOTSTRAP_VERSION:
        return Check(
            name,
            FAIL,
            f"version {value}, the CDK needs {MIN_BOOTSTRAP_VERSION} or later",
            bootstrap,
        )
    return Check(name, OK, f"version {value}")
