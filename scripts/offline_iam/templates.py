"""Functions' roles and environments from the synthesized templates, with the intrinsics resolved.

CloudFormation's references (``Ref``, ``Fn::GetAtt``, ``Fn::Join``, pseudo parameters) are
resolved against a local scope: moto's account, the local region, and the names the local run
gives the stack's tables. A table is named locally by the environment variable through which the
function finds it (``BUDGET_TABLE_NAME`` -> the local run's budget table), so a new table needs
no code here: it is created and granted exactly as the template says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"  # moto's default account
_ARN_SERVICES = {
    "AWS::DynamoDB::Table": ("dynamodb", "table/{name}"),
    "AWS::Logs::LogGroup": ("logs", "log-group:{name}:*"),
    "AWS::SSM::Parameter": ("ssm", "parameter/{name}"),
    "AWS::SecretsManager::Secret": ("secretsmanager", "secret:{name}"),
    "AWS::KMS::Key": ("kms", "key/{name}"),
}


@dataclass(frozen=True)
class LocalScope:
    region: str
    account: str = ACCOUNT
    partition: str = "aws"
    names: Mapping[str, str] = field(default_factory=dict)  # logical id -> local physical name


@dataclass(frozen=True)
class FunctionRole:
    stack: str
    logical_id: str
    handler: str
    role: str  # the role's logical id
    policy: dict[str, Any]  # the role's policy document, resolved
    environment: dict[str, str]  # the function's environment, resolved


def local_names(template: Mapping[str, Any], table_names: Mapping[str, str]) -> dict[str, str]:
    """Logical id -> local name of every resource a function's environment variable names
    (``{"BUDGET_TABLE_NAME": {"Ref": "RouterBudgetTable…"}}``), by ``table_names`` (variable ->
    local name); other resources keep their logical id as their name."""
    names = {logical: logical for logical in template["Resources"]}
    for resource in template["Resources"].values():
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        for variable, value in variables.items():
            if isinstance(value, dict) and "Ref" in value and variable in table_names:
                names[value["Ref"]] = table_names[variable]
    return names


def resolve(value: Any, template: Mapping[str, Any], scope: LocalScope) -> Any:
    """``value`` with every CloudFormation intrinsic replaced by its local value."""
    if isinstance(value, list):
        return [resolve(v, template, scope) for v in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        return _ref(value["Ref"], template, scope)
    if "Fn::GetAtt" in value:
        logical, attribute = value["Fn::GetAtt"]
        if attribute != "Arn":
            return f"{logical}.{attribute}"
        return _arn(logical, template, scope)
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(p, template, scope)) for p in parts)
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        text = value["Fn::Sub"]
        for pseudo in ("AWS::Partition", "AWS::Region", "AWS::AccountId", "AWS::URLSuffix"):
            text = text.replace("${" + pseudo + "}", str(_ref(pseudo, template, scope)))
        return text
    return {k: resolve(v, template, scope) for k, v in value.items()}


def _ref(name: str, template: Mapping[str, Any], scope: LocalScope) -> str:
    pseudo = {
        "AWS::Partition": scope.partition,
        "AWS::Region": scope.region,
        "AWS::AccountId": scope.account,
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": "local",
    }
    if name in pseudo:
        return pseudo[name]
    kind = template["Resources"].get(name, {}).get("Type")
    if kind == "AWS::SecretsManager::Secret":  # a secret's Ref is its ARN
        return _arn(name, template, scope)
    return scope.names.get(name, name)


def _arn(logical: str, template: Mapping[str, Any], scope: LocalScope) -> str:
    kind = template["Resources"].get(logical, {}).get("Type", "")
    service, path = _ARN_SERVICES.get(kind, ("cloudformation", "resource/{name}"))
    name = scope.names.get(logical, logical)
    region = "" if service == "iam" else scope.region
    return f"arn:{scope.partition}:{service}:{region}:{scope.account}:{path.format(name=name)}"


def function_roles(
    stack: str, template: Mapping[str, Any], scope: LocalScope
) -> list[FunctionRole]:
    """Every Lambda function of ``template`` with the resolved policy of its role."""
    resources = template["Resources"]
    roles = []
    for logical, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        properties = resource["Properties"]
        role = properties["Role"]["Fn::GetAtt"][0]
        statements = [
            statement
            for policy in resources.values()
            if policy["Type"] == "AWS::IAM::Policy"
            and {"Ref": role} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
        variables = properties.get("Environment", {}).get("Variables", {})
        roles.append(
            FunctionRole(
                stack=stack,
                logical_id=logical,
                handler=properties.get("Handler", ""),
                role=role,
                policy=resolve({"Version": "2012-10-17", "Statement": statements}, template, scope),
                environment={k: str(resolve(v, template, scope)) for k, v in variables.items()},
            )
        )
    return roles
