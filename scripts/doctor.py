"""Preflight for a first deploy: checks what usually fails it and names the fix for each problem.

    python scripts/doctor.py [--routes FILE] [--region R] [--profile P]
                             [--preset NAME ... | --all-presets] [--no-invoke] [--json]

1. credentials and region: STS GetCallerIdentity;
2. the CDK bootstrap: the ``CDKToolkit`` stack in a usable ``*_COMPLETE`` state and the bootstrap
   version parameter ``/cdk-bootstrap/hnb659fds/version``;
3. every model of the preset (the active one by default): its lifecycle (Active / Legacy / gone,
   from ListFoundationModels; inference profiles through GetInferenceProfile) and whether this
   account can invoke it: one tiny real call each (Converse with maxTokens 1, or the embedding
   model on a short text, about a thousandth of a cent in all); ``--no-invoke`` skips the calls.

A Legacy model is a warning, not a failure: it still works for accounts that used it recently, and
the invocation check says whether yours can. The exit code is 1 when any check fails.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import cli
from llm_router.config import ConfigError, RoutesConfig, load_routes
from preflight.account import (
    BOOTSTRAP_STACK,
    BOOTSTRAP_VERSION_PARAMETER,
    check_bootstrap,
    check_bootstrap_version,
    check_identity,
)
from preflight.checks import FAIL, OK, SKIP, WARN, Check
from preflight.models import (
    Catalogue,
    ModelUse,
    check_invoke,
    check_lifecycle,
    model_uses,
    profile_prefix,
)
from routes_file import add_routes_argument, use_routes_file

__all__ = [  # the checks, run and reported from here
    "BOOTSTRAP_STACK", "BOOTSTRAP_VERSION_PARAMETER", "FAIL", "OK", "SKIP", "WARN", "Catalogue",
    "Check", "Clients", "ModelUse", "check_bootstrap", "check_bootstrap_version",
    "check_identity", "check_invoke", "check_lifecycle", "main", "model_uses", "profile_prefix",
    "run_checks",
]


@dataclass(frozen=True)
class Clients:
    """The AWS clients the checks use; tests pass moto-backed, stubbed or stand-in clients."""

    sts: Any
    cloudformation: Any
    ssm: Any
    bedrock: Any
    bedrock_runtime: Any


def run_checks(
    clients: Clients,
    configs: Sequence[RoutesConfig],
    region: str,
    invoke: bool = True,
    on_check: Callable[[Check], None] | None = None,
) -> list[Check]:
    checks: list[Check] = []

    def add(new: Iterable[Check]) -> None:
        for check in new:
            checks.append(check)
            if on_check:
                on_check(check)

    identity, account = check_identity(clients.sts)
    add([identity])
    if account is None:
        add([Check("everything else", SKIP, "needs working credentials")])
        return checks
    add(check_bootstrap(clients.cloudformation, clients.ssm, account, region))
    catalogue = Catalogue(clients.bedrock)
    for use in model_uses(configs):
        add([check_lifecycle(use, clients.bedrock, catalogue, region)])
        if invoke:
            legacy = catalogue.is_legacy(use.model_id)
            add([check_invoke(use, clients.bedrock_runtime, region, legacy, clients.bedrock)])
        else:
            add([Check(f"{use.model_id} invoke", SKIP, "not invoked (--no-invoke)")])
    return checks


def make_clients(session: Any) -> Clients:
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5,
                    read_timeout=30)
    return Clients(
        *(
            session.client(service, config=config)
            for service in ("sts", "cloudformation", "ssm", "bedrock", "bedrock-runtime")
        )
    )


MARKS = {OK: "[ OK ]", WARN: "[WARN]", FAIL: "[FAIL]", SKIP: "[SKIP]"}


def render(check: Check) -> str:
    line = f"{MARKS[check.status]} {check.name}: {check.detail}"
    return line + (f"\n       fix: {check.fix}" if check.fix else "")


def summary(checks: Sequence[Check]) -> str:
    failed = sum(c.status == FAIL for c in checks)
    warned = sum(c.status == WARN for c in checks)
    if failed:
        return f"{failed} check(s) failed, {warned} warning(s): fix the above before deploying."
    return f"Ready to deploy ({warned} warning(s))." if warned else "Ready to deploy."


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Check an AWS account before the first deploy.")
    parser.add_argument("--region", help="the region you deploy to (default: your profile's)")
    parser.add_argument("--profile", help="AWS profile to use")
    presets = parser.add_mutually_exclusive_group()
    presets.add_argument("--preset", action="append", help="preset to check (repeatable)")
    presets.add_argument(
        "--all-presets", action="store_true", help="check the models of every preset"
    )
    parser.add_argument("--no-invoke", action="store_true", help="skip the model invocations")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    add_routes_argument(parser)
    return parser.parse_args(argv)


def load_configs(args: argparse.Namespace) -> list[RoutesConfig]:
    use_routes_file(args.routes)
    names = list(load_routes().raw["presets"]) if args.all_presets else args.preset or [None]
    return [load_routes(preset=name) for name in names]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        configs = load_configs(args)
        session = boto3.Session(profile_name=args.profile, region_name=args.region)
    except (ConfigError, BotoCoreError) as exc:
        return cli.error(exc, 2)
    region = session.region_name
    if not region:
        check = Check(
            "AWS region", FAIL, "no region configured",
            "Pass --region, set AWS_REGION or `aws configure set region <region>`.",
        )
        print(json.dumps({"ok": False, "checks": [asdict(check)]}) if args.json else render(check))
        return 1
    live = None if args.json else (lambda check: print(render(check), flush=True))
    if not args.json:
        print(f"Preflight for preset {', '.join(c.preset for c in configs)} in {region}")
    checks = run_checks(make_clients(session), configs, region, not args.no_invoke, live)
    failed = any(c.status == FAIL for c in checks)
    if args.json:
        report = {
            "ok": not failed,
            "region": region,
            "presets": [c.preset for c in configs],
            "checks": [asdict(c) for c in checks],
        }
        print(json.dumps(report, indent=2))
    else:
        print(summary(checks))
    return 1 if failed else 0


if __name__ == "__main__":
    cli.run(main)
