"""Each function of a local run gets its synthesized role: assumed in moto, known to the stand-in.

The local run serves every router from one process, but in AWS each router stack's function has
a role of its own and the feedback function another. Here each of them is created in moto's IAM
from the stack's template, assumed, and its credentials handed to the clients that function
uses; the router roles are registered with the Bedrock stand-in too, so a model call the role
does not allow is refused as Bedrock would refuse it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import moto_iam, templates
from .synthesized import synthesized_templates

STRATEGY_VARIABLE = "ROUTER_STRATEGY"


@dataclass(frozen=True)
class LocalRoles:
    routers: Mapping[str, moto_iam.Credentials]  # strategy -> its router function's role
    feedback: moto_iam.Credentials | None  # the feedback function's role
    operator: moto_iam.Credentials  # allowed everything: set-up and scripts/feedback.py
    policies: Mapping[str, dict[str, Any]]  # role name -> its resolved policy, for messages
    streams: Mapping[str, moto_iam.Credentials] = field(default_factory=dict)  # /ask/stream's


def function_roles(
    routes_path: Path, preset: str | None, region: str, table_names: Mapping[str, str]
) -> list[templates.FunctionRole]:
    """Every function of every stack of the routes file, resolved to the local run's names."""
    return roles_of(synthesized_templates(routes_path, preset), region, table_names)


def roles_of(
    stack_templates: Mapping[str, Any], region: str, table_names: Mapping[str, str]
) -> list[templates.FunctionRole]:
    """Every function of every template, its policy resolved to the local names."""
    found = []
    for stack, template in stack_templates.items():
        scope = templates.LocalScope(
            region=region, names=templates.local_names(template, table_names)
        )
        found.extend(templates.function_roles(stack, template, scope))
    return found


def grant_local_roles(
    roles: list[templates.FunctionRole],
    moto_url: str,
    region: str,
    bootstrap: moto_iam.Credentials,
    standin: Any | None,
    router_handler: str,
    feedback_handler: str,
    stream_handler: str | None = None,
) -> LocalRoles:
    """Create and assume each role in moto (before enforcement starts); tell the stand-in the
    roles that call Bedrock (the routers' and, with ``stream_handler``, the streaming ones)."""
    operator = moto_iam.admin_credentials(moto_url, region, bootstrap)
    routers: dict[str, moto_iam.Credentials] = {}
    streams: dict[str, moto_iam.Credentials] = {}
    feedback = None
    policies = {}
    for role in roles:
        name = f"{role.stack}-{role.role}"
        credentials = moto_iam.assume_role(moto_url, region, operator, name, role.policy)
        policies[name] = role.policy
        if role.handler == router_handler:
            routers[role.environment[STRATEGY_VARIABLE]] = credentials
            if standin is not None:
                standin.register_identity(credentials.access_key_id, name, role.policy)
        elif stream_handler is not None and role.handler == stream_handler:
            streams[role.environment[STRATEGY_VARIABLE]] = credentials
            if standin is not None:
                standin.register_identity(credentials.access_key_id, name, role.policy)
        elif role.handler == feedback_handler and feedback is None:
            feedback = credentials  # one feedback handler serves every router locally
    return LocalRoles(routers, feedback, operator, policies, streams)
