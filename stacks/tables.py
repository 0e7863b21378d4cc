"""The routers' DynamoDB tables: the daily budget's spend counters, the server-kept
conversations, the callers' feedback and the response cache.

All are small on-demand tables whose items expire through a TTL attribute (``expires_at``), so
they cost nothing while idle and never need cleaning. They are sample data: removed with the
stack, and without point-in-time recovery (acknowledged to cdk-nag in :mod:`stacks.nag`). For
the cache that is by design, not only economy: everything in it can be made again by asking the
models, entries live days at most, and a restore would bring back answers that a configuration
change or a purge had retired.

The cache table is encrypted with the AWS-owned key by default (no key to pay for or manage),
or with a customer-managed KMS key of the stack (rotated yearly) when ``cache.
customer_managed_key`` is true: then who may read the cached answers is also a key policy.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct
from llm_router.config import RoutesConfig
from llm_router.governance.budget import parse_budget

TTL_ATTRIBUTE = "expires_at"
BUDGET_PARTITION_KEY = "pk"
FEEDBACK_PARTITION_KEY = "request_id"
CONVERSATION_PARTITION_KEY = "conversation_id"  # llm_router.governance.conversation_store


def budget_enabled(config: RoutesConfig) -> bool:
    """Whether the budget guard needs its table: a stack-wide or any tier's daily budget is set.

    The same rule as ``llm_router.governance.budget.BudgetGuard.enabled``, on the same parsed
    section.
    """
    return parse_budget(config.raw).daily_usd is not None or any(
        tier.daily_budget_usd is not None for tier in config.tiers.values()
    )


def expiring_table(scope: Construct, construct_id: str, partition_key: str) -> dynamodb.Table:
    """An on-demand table keyed by one string attribute, items expiring at ``expires_at``."""
    return dynamodb.Table(
        scope,
        construct_id,
        partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        time_to_live_attribute=TTL_ATTRIBUTE,
        removal_policy=RemovalPolicy.DESTROY,
    )


def budget_table(scope: Construct) -> dynamodb.Table:
    """Spend per day (and per tier), incremented atomically by the router function."""
    return expiring_table(scope, "BudgetTable", BUDGET_PARTITION_KEY)


def feedback_table(scope: Construct) -> dynamodb.Table:
    """One item per feedback on an answered request, kept for ``feedback.retention_days``."""
    return expiring_table(scope, "FeedbackTable", FEEDBACK_PARTITION_KEY)


def cache_enabled(config: RoutesConfig) -> bool:
    """Whether the response cache needs its table: it is on for at least one category."""
    return config.cache.enabled and bool(config.cache.categories)


def cache_table(scope: Construct, config: RoutesConfig) -> tuple[dynamodb.Table, kms.Key | None]:
    """Cached answers and semantic candidates (``llm_router.pipeline.cache.store``), and the
    customer-managed key that encrypts them when the configuration asks for one."""
    key = None
    encryption = dynamodb.TableEncryption.DEFAULT  # the AWS-owned key
    if config.cache.customer_managed_key:
        key = kms.Key(
            scope,
            "CacheKey",
            description="Encrypts the router's response cache table",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        encryption = dynamodb.TableEncryption.CUSTOMER_MANAGED
    table = dynamodb.Table(
        scope,
        "CacheTable",
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        time_to_live_attribute=TTL_ATTRIBUTE,
        encryption=encryption,
        encryption_key=key,
        removal_policy=RemovalPolicy.DESTROY,
    )
    return table, key


def conversation_table(scope: Construct) -> dynamodb.Table:
    """One item per server-kept conversation, expiring ``conversation.ttl_hours`` after its last
    turn (``llm_router.governance.conversation_store``)."""
    return expiring_table(scope, "ConversationTable", CONVERSATION_PARTITION_KEY)
