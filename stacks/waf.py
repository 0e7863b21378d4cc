"""The optional AWS WAF web ACL in front of a router's API stage (``deployment.waf``).

Two rules, both AWS-maintained logic rather than hand-written patterns: the AWS managed common rule
set (the OWASP-style baseline: bad bots, oversized or malformed parts, known exploit signatures)
and a rate-based rule that blocks a client IP sending more than ``rate_limit_per_5_minutes``.
The common set's ``SizeRestrictions_BODY`` (bodies over 8 KB) only counts: a conversation
``history`` may legitimately exceed 8 KB, and the request validator already bounds every field.
"""

from __future__ import annotations

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from stacks.deployment import WafSettings

COMMON_RULE_SET = "AWSManagedRulesCommonRuleSet"
COUNTED_COMMON_RULES = ("SizeRestrictions_BODY",)


def _visibility(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )


def protect_stage(
    scope: Construct, stage: apigw.Stage, settings: WafSettings, metric_prefix: str
) -> wafv2.CfnWebACL:
    """A regional web ACL with the two rules, associated with ``stage``."""
    acl = wafv2.CfnWebACL(
        scope,
        "WebAcl",
        scope="REGIONAL",
        default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
        visibility_config=_visibility(metric_prefix),
        rules=[
            wafv2.CfnWebACL.RuleProperty(
                name=COMMON_RULE_SET,
                priority=0,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS",
                        name=COMMON_RULE_SET,
                        rule_action_overrides=[
                            wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name=rule,
                                action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={}),
                            )
                            for rule in COUNTED_COMMON_RULES
                        ],
                    )
                ),
                visibility_config=_visibility(f"{metric_prefix}-common"),
            ),
            wafv2.CfnWebACL.RuleProperty(
                name="RatePerClientIp",
                priority=1,
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        limit=settings.rate_limit_per_5_minutes,
                        aggregate_key_type="IP",
                        evaluation_window_sec=300,
                    )
                ),
                visibility_config=_visibility(f"{metric_prefix}-rate"),
            ),
        ],
    )
    wafv2.CfnWebACLAssociation(
        scope, "WebAclAssociation", resource_arn=stage.stage_arn, web_acl_arn=acl.attr_arn
    )
    return acl
