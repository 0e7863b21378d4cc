"""What ``cdk destroy`` leaves behind: exactly what docs/deploy.md lists, nothing else.

Every resource of the router stacks is deleted with them except, in each stack, API Gateway's
account-level CloudWatch role and the account setting that points at it (``cloudWatchRoleArn``,
one per region): access logging needs them, and other APIs of the account may log through them,
so they are retained. A new retained resource (or a table or log group that outlives its stack)
fails here until the docs say why it stays.
"""

from __future__ import annotations

import pytest
from llm_router.pipeline.strategies import STRATEGIES
from stack_synth import shared_synth

RETAINED = {"AWS::IAM::Role", "AWS::ApiGateway::Account"}  # docs/deploy.md, "What remains"


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_only_the_api_gateway_logging_role_and_setting_outlive_the_stack(strategy: str) -> None:
    template = shared_synth().templates[STRATEGIES[strategy].stack_name]
    retained = {
        logical_id: resource["Type"]
        for logical_id, resource in template["Resources"].items()
        if resource.get("DeletionPolicy", "Delete") != "Delete"
    }
    assert sorted(retained.values()) == sorted(RETAINED), retained
    account = next(r for r in template["Resources"].values()
                   if r["Type"] == "AWS::ApiGateway::Account")
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    assert retained[role_id] == "AWS::IAM::Role"  # the retained role is the one the setting names
