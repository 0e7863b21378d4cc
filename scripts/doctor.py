"""Preflight for a first deploy: checks what usually fails it and names the fix for each problem.

    python scripts/doctor.py [--region R] [--profile P] [--preset NAME ... | --all-presets]
                             [--no-invoke] [--json]

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
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import _bootstrap  # noqa: F401  (puts lambdas/ on sys.path)
import cli
from llm_router.config import ConfigError, RoutesConfig, load_routes
from llm_router.decision.embeddings import TitanEmbedder
from llm_router.models.bedrock import BedrockFailure

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
BOOTSTRAP_STACK = "CDKToolkit"
BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
MIN_BOOTSTRAP_VERSION = 6  # what the CDK's default stack synthesizer requires
USABLE_STACK_STATES = frozenset(
    {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"}
)
# Geographic prefixes of system inference profile ids (as stacks/model_access.py knows them).
PROFILE_PREFIXES = frozenset({"us", "us-gov", "eu", "apac", "jp", "au", "ca", "global"})
PROBE_TEXT = "ping"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok, warn, fail or skip
    detail: str
    fix: str | None = None


@dataclass(frozen=True)
class Clients:
    """The AWS clients the checks use; tests pass moto-backed, stubbed or stand-in clients."""

    sts: Any
    cloudformation: Any
    ssm: Any
    bedrock: Any
    bedrock_runtime: Any


@dataclass(frozen=True)
class ModelUse:
    """A configured model and what the presets use it for."""

    model_id: str
    roles: tuple[str, ...]
    config: RoutesConfig  # a preset that uses it (for the embedding request's settings)

    @property
    def is_embedding(self) -> bool:
        return self.model_id == self.config.embedding.model_id


def error_code(exc: Exception) -> tuple[str, str]:
    """(code, message) of a botocore error, or of anything else."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return str(error.get("Code", type(exc).__name__)), str(error.get("Message", exc))
    return type(exc).__name__, str(exc)


# --- credentials, region and the CDK bootstrap ------------------------------------------------


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


# --- models --------------------------------------------------------------------------------------


def model_uses(configs: Sequence[RoutesConfig]) -> list[ModelUse]:
    """Every model of the given presets, once, with its roles (``blog-2024 answerer (math)``)."""
    roles: dict[str, list[str]] = {}
    owner: dict[str, RoutesConfig] = {}
    for config in configs:
        prefix = f"{config.preset} " if len(configs) > 1 else ""
        named = [
            (config.classifier.model_id, "classifier"),
            (config.embedding.model_id, "embedding"),
            *answer_roles(config),
        ]
        for model_id, role in named:
            roles.setdefault(model_id, []).append(prefix + role)
            owner.setdefault(model_id, config)
    return [ModelUse(m, tuple(r), owner[m]) for m, r in roles.items()]


def answer_roles(config: RoutesConfig) -> list[tuple[str, str]]:
    """Every answer target of every category and tier: the primary, pool members, fallbacks."""
    named: list[tuple[str, str]] = []
    tiers = [None, *(t for t in config.tiers if config.tiers[t].answerers)]
    for category in config.categories:
        for tier in tiers:
            plan = config.plan_for(category, tier)
            where = category if tier is None else f"{category}, tier {tier}"
            pool = {target.model_id for target in plan.pool}
            for model_id in plan.model_ids():
                role = "answerer" if model_id in pool else "fallback"
                named.append((model_id, f"{role} ({where})"))
    return named


def profile_prefix(model_id: str) -> str | None:
    head, dot, rest = model_id.partition(".")
    return head if dot and "." in rest and head in PROFILE_PREFIXES else None


def switch_preset_fix(config: RoutesConfig) -> str:
    presets = [p for p in config.raw.get("presets", {}) if p != config.preset]
    target = "current" if "current" in presets else (presets[0] if presets else "<preset>")
    return (
        f"switch to the `{target}` preset: set active_preset in routes.json or deploy with "
        f"-c preset={target}"
    )


class Catalogue:
    """ListFoundationModels of the region, fetched once: model id → lifecycle status."""

    def __init__(self, bedrock: Any) -> None:
        self._bedrock = bedrock
        self._statuses: dict[str, str] | None = None
        self._error: Exception | None = None

    def status(self, model_id: str) -> str | None:
        if self._error is not None:
            raise self._error  # asked once; every model's check reports the same cause
        if self._statuses is None:
            try:
                summaries = self._bedrock.list_foundation_models()["modelSummaries"]
            except Exception as exc:
                self._error = exc
                raise
            self._statuses = {
                s["modelId"]: s.get("modelLifecycle", {}).get("status", "ACTIVE")
                for s in summaries
            }
        return self._statuses.get(model_id)

    def is_legacy(self, model_id: str) -> bool:
        """Whether a model (or an inference profile's model) is Legacy; False when unknown."""
        base = model_id.split(".", 1)[1] if profile_prefix(model_id) else model_id
        try:
            return self.status(base) == "LEGACY"
        except Exception:  # the lifecycle check has reported why the list is unavailable
            return False


def check_lifecycle(use: ModelUse, bedrock: Any, catalogue: Catalogue, region: str) -> Check:
    name = f"{use.model_id} lifecycle"
    model_id = use.model_id
    try:
        if model_id.startswith("arn:"):
            return Check(name, SKIP, "an ARN: lifecycle not checked")
        prefix = profile_prefix(model_id)
        if prefix is not None:
            problem = check_profile(use, bedrock, region, prefix)
            if problem is not None:
                return problem
            model_id = model_id.split(".", 1)[1]
        status = catalogue.status(model_id)
    except Exception as exc:
        code, message = error_code(exc)
        return Check(name, FAIL, f"{code}: {message}", access_fix(code, message, use, region))
    if status is None:
        return Check(
            name,
            FAIL,
            f"{model_id} is not offered in {region} (end of life, or not in this region)",
            f"Deploy to a region that offers it, or {switch_preset_fix(use.config)}.",
        )
    label = status.capitalize()
    if status == "ACTIVE":
        return Check(name, OK, label)
    return Check(
        name,
        WARN,
        f"{label}: works only for accounts that used it recently, until its end-of-life date",
        f"{use.model_id} is {label}: {switch_preset_fix(use.config)}.",
    )


def check_profile(use: ModelUse, bedrock: Any, region: str, prefix: str) -> Check | None:
    """A failed check when the inference profile cannot serve from this region, else None."""
    name = f"{use.model_id} lifecycle"
    regions = use.config.inference_profile_regions.get(prefix)
    if regions and region not in regions:
        return Check(
            name,
            FAIL,
            f"{prefix}. inference profiles are called from {', '.join(regions)}, not {region}",
            f"Deploy to one of {', '.join(regions)}, or {switch_preset_fix(use.config)}.",
        )
    profile = bedrock.get_inference_profile(inferenceProfileIdentifier=use.model_id)
    if profile.get("status") != "ACTIVE":
        return Check(name, FAIL, f"inference profile status {profile.get('status')}", None)
    return None


def access_fix(
    code: str, message: str, use: ModelUse, region: str, legacy: bool = False
) -> str | None:
    """The fix for a Bedrock error about one model, None when there is no obvious one."""
    if code == "AccessDeniedException" and "not authorized to perform" in message:
        return (
            f"Allow bedrock:InvokeModel (and bedrock:List*/Get* for this check) on {use.model_id} "
            "for the identity you deploy with."
        )
    if code == "AccessDeniedException" and legacy:
        return f"{use.model_id} is Legacy and this account cannot use it: " + (
            switch_preset_fix(use.config) + "."
        )
    if code == "AccessDeniedException":
        return (
            f"Enable model access for {use.model_id} in the Amazon Bedrock console, "
            f"region {region}."
        )
    if "on-demand throughput" in message:
        return (
            f"{use.model_id} is served through an inference profile only: use its "
            "us./eu./apac. profile id in routes.json."
        )
    if code in ("ResourceNotFoundException", "ValidationException"):
        return (
            f"{use.model_id} is not available to this account in {region}: deploy to a region "
            f"that offers it, or {switch_preset_fix(use.config)}."
        )
    return None


def check_invoke(use: ModelUse, runtime: Any, region: str, legacy: bool = False) -> Check:
    """One tiny real call, as the routers make it: Converse, or the embedder on a short text."""
    name = f"{use.model_id} invoke"
    try:
        if use.is_embedding:
            TitanEmbedder(runtime, use.config.embedding).embed(PROBE_TEXT)
            how = "InvokeModel (embedding)"
        else:
            runtime.converse(
                modelId=use.model_id,
                messages=[{"role": "user", "content": [{"text": PROBE_TEXT}]}],
                inferenceConfig={"maxTokens": 1},
            )
            how = "Converse, maxTokens 1"
    except BedrockFailure as failure:
        code, message = failure.code, failure.message
    except Exception as exc:
        code, message = error_code(exc)
    else:
        return Check(name, OK, f"invoked ({how}) as {', '.join(use.roles)}")
    if code in ("ThrottlingException", "ServiceQuotaExceededException"):
        return Check(name, WARN, f"reachable but throttled: {code}: {message}")
    return Check(name, FAIL, f"{code}: {message}", access_fix(code, message, use, region, legacy))


# --- the run -------------------------------------------------------------------------------------


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
            add([check_invoke(use, clients.bedrock_runtime, region, legacy)])
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
    return parser.parse_args(argv)


def load_configs(args: argparse.Namespace) -> list[RoutesConfig]:
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
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
