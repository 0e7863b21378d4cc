"""The deploy preflight (scripts/doctor.py), offline.

STS, CloudFormation and SSM are moto's; the ``bedrock`` control plane (ListFoundationModels,
GetInferenceProfile, which moto does not implement) is a real boto3 client under
``botocore.stub.Stubber`` returning exactly the catalogue each test needs; bedrock-runtime is the
stand-in on loopback. Nothing reaches AWS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import doctor
import pytest
from botocore.stub import Stubber
from conftest import TEST_PRESET
from llm_router.config import RoutesConfig, load_routes
from llm_router.models.bedrock import runtime_client
from moto import mock_aws
from preflight.access import FORM_FIX, first_call_fix, marketplace_fix
from preflight.models import check_profile

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
BOOTSTRAP_FIX = f"npx cdk bootstrap aws://{ACCOUNT}/{REGION}"
# A bootstrap stack as `cdk bootstrap` leaves it: the version parameter is one of its resources.
BOOTSTRAP_TEMPLATE = {
    "Resources": {
        "CdkBootstrapVersion": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {
                "Type": "String",
                "Name": doctor.BOOTSTRAP_VERSION_PARAMETER,
                "Value": "21",
            },
        }
    }
}


@pytest.fixture(autouse=True)
def _routes_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tutor's routes file (conftest's ROUTES_FILE) with the suite's preset (blog-2024, whose
    legacy models these tests need), as ROUTES_PRESET gives it to doctor.py."""
    monkeypatch.setenv("ROUTES_PRESET", TEST_PRESET)
    monkeypatch.delenv("AWS_REGION", raising=False)


@pytest.fixture(scope="module")
def blog() -> RoutesConfig:
    return load_routes(preset="blog-2024")


@pytest.fixture(scope="module")
def current() -> RoutesConfig:
    return load_routes(preset="current")


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def bootstrapped(aws: None) -> None:
    """A bootstrapped moto account: CDKToolkit in CREATE_COMPLETE with version parameter 21."""
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(
        StackName=doctor.BOOTSTRAP_STACK, TemplateBody=json.dumps(BOOTSTRAP_TEMPLATE)
    )


# --- helpers ---------------------------------------------------------------------------------


def catalogue(statuses: dict[str, str | None]) -> dict[str, Any]:
    """A ListFoundationModels response: model id → ACTIVE / LEGACY (None: no lifecycle field)."""
    summaries = []
    for model_id, status in statuses.items():
        summary: dict[str, Any] = {
            "modelArn": f"arn:aws:bedrock:{REGION}::foundation-model/{model_id}",
            "modelId": model_id,
        }
        if status is not None:
            summary["modelLifecycle"] = {"status": status}
        summaries.append(summary)
    return {"modelSummaries": summaries}


def profile(profile_id: str, status: str = "ACTIVE") -> dict[str, Any]:
    """A GetInferenceProfile response for a system-defined (geographic) inference profile."""
    base = profile_id.split(".", 1)[1]
    return {
        "inferenceProfileName": f"US {base}",
        "inferenceProfileArn": (
            f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/{profile_id}"
        ),
        "inferenceProfileId": profile_id,
        "models": [
            {"modelArn": f"arn:aws:bedrock:{r}::foundation-model/{base}"}
            for r in ("us-east-1", "us-east-2", "us-west-2")
        ],
        "status": status,
        "type": "SYSTEM_DEFINED",
    }


class StubbedBedrock:
    """A real ``bedrock`` client whose calls are answered, in order, by a Stubber."""

    def __init__(self, region: str = REGION) -> None:
        self.client = boto3.client("bedrock", region_name=region)
        self.stubber = Stubber(self.client)
        self.stubber.activate()

    def models(self, statuses: dict[str, str | None]) -> StubbedBedrock:
        self.stubber.add_response("list_foundation_models", catalogue(statuses), {})
        return self

    def profiles(self, config: RoutesConfig) -> StubbedBedrock:
        """GetInferenceProfile answers for every profile the preset uses, in the doctor's order."""
        for model_id in config.all_model_ids():
            if doctor.profile_prefix(model_id):
                self.profile(model_id)
        return self

    def profile(self, profile_id: str, status: str = "ACTIVE") -> StubbedBedrock:
        self.stubber.add_response(
            "get_inference_profile",
            profile(profile_id, status),
            {"inferenceProfileIdentifier": profile_id},
        )
        return self

    def error(self, operation: str, code: str, message: str, status: int = 400) -> StubbedBedrock:
        self.stubber.add_client_error(
            operation, service_error_code=code, service_message=message, http_status_code=status
        )
        return self

    def assert_all_used(self) -> None:
        self.stubber.assert_no_pending_responses()


def all_active(config: RoutesConfig) -> dict[str, str | None]:
    """Every model of a preset (profiles by their base model) listed Active."""
    ids = [u.model_id for u in doctor.model_uses([config])]
    return {(m.split(".", 1)[1] if doctor.profile_prefix(m) else m): "ACTIVE" for m in ids}


def moto_clients(bedrock: Any, runtime: Any, region: str = REGION) -> doctor.Clients:
    return doctor.Clients(
        sts=boto3.client("sts", region_name=region),
        cloudformation=boto3.client("cloudformation", region_name=region),
        ssm=boto3.client("ssm", region_name=region),
        bedrock=bedrock,
        bedrock_runtime=runtime,
    )


def by_name(checks: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {c.name: c for c in checks}


def use_clients(
    monkeypatch: pytest.MonkeyPatch, bedrock: StubbedBedrock, runtime: Any
) -> list[Any]:
    """Make main() use moto STS/CloudFormation/SSM clients in its session's region, the stubbed
    bedrock client and the stand-in runtime; returns the sessions main() created."""
    sessions: list[Any] = []

    def make_clients(session: Any) -> doctor.Clients:
        sessions.append(session)
        return moto_clients(bedrock.client, runtime, session.region_name)

    monkeypatch.setattr(doctor, "make_clients", make_clients)
    return sessions


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = doctor.main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, json.loads(out)


def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An environment where botocore finds no credentials (and asks no metadata service)."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@dataclass
class MainEnv:
    """What a test of doctor.main() works with: the blog-2024 routes, the stand-in (for faults and
    its call log), and main() wired to moto, a stubbed bedrock catalogue and the stand-in runtime.
    One fixture, because every such test sets up the same six things the same way."""

    blog: RoutesConfig
    standin: Any
    runtime: Any
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]
    sessions: list[Any] = field(default_factory=list)

    def serve(self, statuses: dict[str, str | None]) -> StubbedBedrock:
        """Make main() see ``statuses`` as the catalogue (blog-2024's profiles too); returns the
        stubbed bedrock so a test can queue more answers and check they were all used."""
        bedrock = StubbedBedrock().models(statuses).profiles(self.blog)
        self.sessions = use_clients(self.monkeypatch, bedrock, self.runtime)
        return bedrock

    def run_json(self, argv: list[str]) -> tuple[int, dict[str, Any]]:
        return run_json(argv, self.capsys)


@pytest.fixture
def env(
    blog: RoutesConfig,
    fresh_standin: Any,
    bedrock_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> MainEnv:
    return MainEnv(blog, fresh_standin, bedrock_client, monkeypatch, capsys)


# --- all good --------------------------------------------------------------------------------


def test_all_good_text_output_and_exit_0(
    bootstrapped: None, env: MainEnv
) -> None:
    bedrock = env.serve(all_active(env.blog))

    assert doctor.main([]) == 0

    out = env.capsys.readouterr().out
    assert env.sessions[0].region_name == REGION
    assert out.startswith(f"Preflight for preset blog-2024 in {REGION}\n")
    assert "[FAIL]" not in out and "[WARN]" not in out
    assert f"[ OK ] AWS credentials: account {ACCOUNT}" in out
    assert "[ OK ] CDK bootstrap version: version 21" in out
    assert out.rstrip().endswith("Ready to deploy.")
    bedrock.assert_all_used()
    # One tiny call per model: Converse with maxTokens 1, InvokeModel for the embedder.
    calls = env.standin.calls()
    assert {c["model_id"] for c in calls} == set(env.blog.all_model_ids())
    assert all(c["status"] == 200 for c in calls)
    for call in calls:
        if call["model_id"] == env.blog.embedding.model_id:
            assert call["api"] == "invoke"
        else:
            assert call["api"] == "converse"
            assert call["body"]["inferenceConfig"] == {"maxTokens": 1}


def test_all_good_json_lists_every_check(
    bootstrapped: None, env: MainEnv, blog: RoutesConfig, current: RoutesConfig
) -> None:
    # --all-presets: blog-2024's models (the first lifecycle check lists the catalogue once),
    # then current's inference profiles, each looked up with GetInferenceProfile.
    bedrock = env.serve({**all_active(blog), **all_active(current)})
    for model_id in current.all_model_ids():
        if doctor.profile_prefix(model_id):
            bedrock.profile(model_id)

    code, report = env.run_json(["--all-presets"])

    assert code == 0
    assert report["ok"] is True
    assert report["region"] == REGION
    assert report["presets"] == ["blog-2024", "current"]
    checks = report["checks"]
    assert all(set(c) == {"name", "status", "detail", "fix"} for c in checks)
    assert all(c["status"] == "ok" and c["fix"] is None for c in checks), checks
    models = dict.fromkeys([*blog.all_model_ids(), *current.all_model_ids()])
    expected = ["AWS credentials", "CDK bootstrap", "CDK bootstrap version"]
    for model_id in models:
        expected += [f"{model_id} lifecycle", f"{model_id} invoke"]
    assert [c["name"] for c in checks] == expected
    # The shared embedding model is checked once, for both presets.
    embed = by_name([doctor.Check(**c) for c in checks])[f"{blog.embedding.model_id} invoke"]
    assert "blog-2024 embedding" in embed.detail and "current embedding" in embed.detail
    bedrock.assert_all_used()


# --- credentials and region ------------------------------------------------------------------


def test_no_credentials_fails_with_fix_and_no_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_credentials(monkeypatch, tmp_path)

    assert doctor.main([]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "[FAIL] AWS credentials: NoCredentialsError" in out
    assert "aws configure" in out
    assert "[SKIP] everything else: needs working credentials" in out

    code, report = run_json([], capsys)
    assert code == 1 and report["ok"] is False
    credentials, rest = report["checks"]
    assert credentials["name"] == "AWS credentials" and credentials["status"] == "fail"
    assert "aws configure" in credentials["fix"] and "aws sso login" in credentials["fix"]
    assert rest["status"] == "skip"


def test_rejected_credentials_fail_with_fix() -> None:
    sts = boto3.client("sts", region_name=REGION)
    with Stubber(sts) as stubber:
        stubber.add_client_error(
            "get_caller_identity", "ExpiredToken", "The security token included is expired"
        )
        check, account = doctor.check_identity(sts)
    assert account is None
    assert check.status == doctor.FAIL
    assert check.detail == "ExpiredToken: The security token included is expired"
    assert "aws configure" in (check.fix or "")


def test_no_region_fails_with_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))

    code, report = run_json([], capsys)

    assert code == 1 and report["ok"] is False
    [check] = report["checks"]
    assert check["name"] == "AWS region" and check["status"] == "fail"
    assert "--region" in check["fix"]


# --- the CDK bootstrap -----------------------------------------------------------------------


def test_missing_bootstrap_stack_fails_with_cdk_bootstrap(aws: None) -> None:
    clients = moto_clients(None, None)
    checks = doctor.check_bootstrap(clients.cloudformation, clients.ssm, ACCOUNT, REGION)
    assert checks == [
        doctor.Check(
            "CDK bootstrap",
            doctor.FAIL,
            f"no CDKToolkit stack in {REGION}",
            f"Run `{BOOTSTRAP_FIX}`.",
        )
    ]


@pytest.mark.parametrize("version", ["5", "latest", None])
def test_too_old_bootstrap_version_fails_with_cdk_bootstrap(
    bootstrapped: None, version: str | None
) -> None:
    ssm = boto3.client("ssm", region_name=REGION)
    if version is None:  # a stack whose version parameter is gone
        ssm.delete_parameter(Name=doctor.BOOTSTRAP_VERSION_PARAMETER)
    else:
        ssm.put_parameter(
            Name=doctor.BOOTSTRAP_VERSION_PARAMETER, Value=version, Type="String", Overwrite=True
        )
    clients = moto_clients(None, None)

    stack, version_check = doctor.check_bootstrap(
        clients.cloudformation, clients.ssm, ACCOUNT, REGION
    )

    assert stack.status == doctor.OK and stack.detail == "CDKToolkit is CREATE_COMPLETE"
    assert version_check.name == "CDK bootstrap version"
    assert version_check.status == doctor.FAIL
    assert version_check.fix == f"Run `{BOOTSTRAP_FIX}`."
    assert version_check.detail == (
        f"{doctor.BOOTSTRAP_VERSION_PARAMETER} is missing"
        if version is None
        else f"version {version}, the CDK needs 6 or later"
    )


def test_bootstrap_failures_fail_the_run(
    aws: None, env: MainEnv
) -> None:
    env.serve(all_active(env.blog))

    code, report = env.run_json(["--no-invoke"])

    assert code == 1 and report["ok"] is False
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert [c["name"] for c in failed] == ["CDK bootstrap"]
    assert "cdk bootstrap" in failed[0]["fix"]


def describe(status: str) -> dict[str, Any]:
    return {
        "Stacks": [
            {
                "StackName": "CDKToolkit",
                "CreationTime": "2024-01-01T00:00:00Z",
                "StackStatus": status,
            }
        ]
    }


@pytest.mark.parametrize(
    ("status", "expected", "fix"),
    [
        ("ROLLBACK_COMPLETE", doctor.FAIL, f"then run `{BOOTSTRAP_FIX}`."),
        ("CREATE_IN_PROGRESS", doctor.WARN, "Wait for it."),
    ],
)
def test_unusable_bootstrap_stack(status: str, expected: str, fix: str) -> None:
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    with Stubber(cloudformation) as stubber:
        stubber.add_response("describe_stacks", describe(status), {"StackName": "CDKToolkit"})
        [check] = doctor.check_bootstrap(cloudformation, None, ACCOUNT, REGION)
    assert check.status == expected
    assert check.detail == f"CDKToolkit is {status}"
    assert (check.fix or "").endswith(fix)


def test_unreadable_bootstrap_version_is_a_warning() -> None:
    ssm = boto3.client("ssm", region_name=REGION)
    with Stubber(ssm) as stubber:
        stubber.add_client_error("get_parameter", "AccessDeniedException", "not allowed")
        check = doctor.check_bootstrap_version(ssm, "Run `npx cdk bootstrap`.")
    assert check.status == doctor.WARN
    assert "AccessDeniedException" in check.detail


# --- model lifecycle -------------------------------------------------------------------------


def test_legacy_model_warns_but_does_not_fail(
    bootstrapped: None, env: MainEnv
) -> None:
    legacy = env.blog.answerer_for("history")
    env.serve({**all_active(env.blog), legacy: "LEGACY"})

    assert doctor.main([]) == 0

    out = env.capsys.readouterr().out
    assert f"[WARN] {legacy} lifecycle: Legacy" in out
    assert "switch to the `current` preset" in out
    assert f"[ OK ] {legacy} invoke" in out  # the account can still use it
    # The model itself and the inference profile in front of it (a fallback) are both Legacy.
    on_legacy = [
        m for m in env.blog.all_model_ids() if m.split(".", 1)[-1] == legacy or m == legacy
    ]
    assert len(on_legacy) == 2
    assert out.rstrip().endswith(f"Ready to deploy ({len(on_legacy)} warning(s)).")


def test_model_without_lifecycle_field_counts_as_active(
    aws: None, blog: RoutesConfig, fresh_standin: Any, bedrock_client: Any
) -> None:
    statuses: dict[str, str | None] = dict.fromkeys(all_active(blog))
    bedrock = StubbedBedrock().models(statuses).profiles(blog)
    checks = doctor.run_checks(
        moto_clients(bedrock.client, bedrock_client), [blog], REGION, invoke=False
    )
    lifecycle = [c for c in checks if c.name.endswith(" lifecycle")]
    assert len(lifecycle) == len(blog.all_model_ids())
    assert all(c.status == doctor.OK for c in lifecycle)


def test_model_gone_from_the_catalogue_fails_with_switch_preset(
    bootstrapped: None, env: MainEnv
) -> None:
    gone = env.blog.answerer_for("math")
    statuses = all_active(env.blog)
    del statuses[gone]
    bedrock = env.serve(statuses)

    code, report = env.run_json(["--no-invoke"])

    assert code == 1 and report["ok"] is False
    failed, *profile = [c for c in report["checks"] if c["status"] == "fail"]
    assert [c["name"] for c in profile] == [f"us.{gone} lifecycle"]  # its fallback profile too
    assert failed["name"] == f"{gone} lifecycle"
    assert failed["detail"] == (
        f"{gone} is not offered in {REGION} (end of life, or not in this region)"
    )
    assert "switch to the `current` preset" in failed["fix"]
    assert "-c preset=current" in failed["fix"]
    bedrock.assert_all_used()


def test_catalogue_unavailable_is_reported_once_per_model_with_iam_fix(
    aws: None, blog: RoutesConfig
) -> None:
    bedrock = StubbedBedrock().error(
        "list_foundation_models",
        "AccessDeniedException",
        "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: "
        "bedrock:ListFoundationModels",
        403,
    ).profiles(blog)
    checks = doctor.run_checks(moto_clients(bedrock.client, None), [blog], REGION, invoke=False)

    lifecycle = [c for c in checks if c.name.endswith(" lifecycle")]
    assert len(lifecycle) == len(blog.all_model_ids())
    for check in lifecycle:
        assert check.status == doctor.FAIL
        assert check.detail.startswith("AccessDeniedException: ")
        assert "Allow bedrock:InvokeModel" in (check.fix or "")
    bedrock.assert_all_used()  # listed once, not once per model


def test_current_preset_looks_up_inference_profiles(
    aws: None, current: RoutesConfig, fresh_standin: Any, bedrock_client: Any
) -> None:
    classifier, embedder = current.classifier.model_id, current.embedding.model_id
    history, math = current.answerer_for("history"), current.answerer_for("math")
    assert all(doctor.profile_prefix(m) == "us" for m in (classifier, history, math))
    statuses = all_active(current)
    statuses[history.split(".", 1)[1]] = "LEGACY"  # the profile's model
    bedrock = (
        StubbedBedrock()
        .profile(classifier)
        .models(statuses)  # first needed for the classifier's base model
        .profile(history)
        .profile(math)
    )

    checks = by_name(
        doctor.run_checks(moto_clients(bedrock.client, bedrock_client), [current], REGION)
    )

    bedrock.assert_all_used()
    assert checks[f"{classifier} lifecycle"].status == doctor.OK
    assert checks[f"{embedder} lifecycle"].status == doctor.OK
    assert checks[f"{math} lifecycle"].status == doctor.OK
    assert checks[f"{history} lifecycle"].status == doctor.WARN
    assert all(checks[f"{m} invoke"].status == doctor.OK for m in current.all_model_ids())
    invoked = {c["model_id"] for c in fresh_standin.calls()}
    assert invoked == set(current.all_model_ids())  # the profile ids themselves


def test_inference_profile_from_a_region_it_does_not_serve(
    aws: None, current: RoutesConfig
) -> None:
    # No GetInferenceProfile call: the us. prefix cannot serve eu-west-1.
    bedrock = StubbedBedrock("eu-west-1").models(all_active(current))
    checks = doctor.run_checks(
        moto_clients(bedrock.client, None, "eu-west-1"), [current], "eu-west-1", invoke=False
    )
    bedrock.assert_all_used()
    failed = [c for c in checks if c.status == doctor.FAIL and c.name.endswith(" lifecycle")]
    assert [c.name for c in failed] == [
        f"{m} lifecycle" for m in current.all_model_ids() if doctor.profile_prefix(m)
    ]
    for check in failed:
        assert "us. inference profiles are called from us-east-1, us-east-2, us-west-2" in (
            check.detail
        )
        assert (check.fix or "").startswith("Deploy to one of us-east-1, us-east-2, us-west-2")
        assert "switch to the `blog-2024` preset" in (check.fix or "")


def test_unknown_inference_profile_fails_with_fix(current: RoutesConfig) -> None:
    use = next(u for u in doctor.model_uses([current]) if doctor.profile_prefix(u.model_id))
    bedrock = StubbedBedrock().error(
        "get_inference_profile", "ResourceNotFoundException", "Inference profile not found", 404
    )
    check = doctor.check_lifecycle(use, bedrock.client, doctor.Catalogue(bedrock.client), REGION)
    assert check.status == doctor.FAIL
    assert check.detail == "ResourceNotFoundException: Inference profile not found"
    assert f"not available to this account in {REGION}" in (check.fix or "")


def test_arn_model_lifecycle_is_skipped(blog: RoutesConfig) -> None:
    arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:default-prompt-router/anthropic.claude:1"
    use = doctor.ModelUse(arn, ("answerer (math)",), blog)
    bedrock = StubbedBedrock()  # no call expected
    check = doctor.check_lifecycle(use, bedrock.client, doctor.Catalogue(bedrock.client), REGION)
    assert check.status == doctor.SKIP


# --- invocation ------------------------------------------------------------------------------


def test_access_denied_invocation_fails_with_enable_model_access(
    bootstrapped: None, env: MainEnv
) -> None:
    denied = env.blog.answerer_for("history")
    env.standin.inject_fault(denied, "AccessDeniedException")
    env.serve(all_active(env.blog))

    code, report = env.run_json([])

    assert code == 1 and report["ok"] is False
    [failed] = [c for c in report["checks"] if c["status"] == "fail"]
    assert failed["name"] == f"{denied} invoke"
    assert failed["detail"].startswith("AccessDeniedException: ")
    assert failed["fix"] == first_call_fix(denied)
    assert "aws-marketplace:Subscribe" in failed["fix"] and "Model access page" in failed["fix"]


def test_access_denied_embedding_fails_with_the_first_call_fix(
    blog: RoutesConfig, fresh_standin: Any, bedrock_client: Any
) -> None:
    use = next(u for u in doctor.model_uses([blog]) if u.is_embedding)
    fresh_standin.inject_fault(use.model_id, "AccessDeniedException")
    check = doctor.check_invoke(use, bedrock_client, REGION)
    assert check.status == doctor.FAIL
    assert check.fix == first_call_fix(use.model_id)
    assert fresh_standin.calls()[0]["api"] == "invoke"


def test_access_denied_on_a_legacy_model_says_switch_preset(
    aws: None, blog: RoutesConfig, fresh_standin: Any, bedrock_client: Any
) -> None:
    legacy = blog.answerer_for("math")
    fresh_standin.inject_fault(legacy, "AccessDeniedException")
    bedrock = StubbedBedrock().models({**all_active(blog), legacy: "LEGACY"}).profiles(blog)

    checks = by_name(
        doctor.run_checks(moto_clients(bedrock.client, bedrock_client), [blog], REGION)
    )

    assert checks[f"{legacy} lifecycle"].status == doctor.WARN
    invoke = checks[f"{legacy} invoke"]
    assert invoke.status == doctor.FAIL
    assert invoke.fix == (
        f"{legacy} is Legacy and this account cannot use it: switch to the `current` preset: "
        "set active_preset in routes.json or deploy with -c preset=current."
    )


def test_throttled_invocation_is_a_warning(blog: RoutesConfig, fresh_standin: Any) -> None:
    runtime = runtime_client(
        region=REGION,
        endpoint_url=fresh_standin.url,
        max_attempts=1,
        credentials=("testing", "testing"),
    )
    use = next(u for u in doctor.model_uses([blog]) if not u.is_embedding)
    fresh_standin.inject_fault(use.model_id, "ThrottlingException")
    check = doctor.check_invoke(use, runtime, REGION)
    assert check.status == doctor.WARN
    assert "ThrottlingException" in check.detail


def test_no_invoke_skips_the_calls(
    bootstrapped: None, env: MainEnv
) -> None:
    env.standin.inject_fault("*", "AccessDeniedException")  # would fail any call
    env.serve(all_active(env.blog))

    code, report = env.run_json(["--no-invoke"])

    assert code == 0 and report["ok"] is True
    assert env.standin.calls() == []
    invoke = [c for c in report["checks"] if c["name"].endswith(" invoke")]
    assert [c["name"] for c in invoke] == [f"{m} invoke" for m in env.blog.all_model_ids()]
    assert all(c["status"] == "skip" for c in invoke)


# -- today's access flow: first call, Marketplace, Anthropic's form, profile regions ---------------


def denied_use(config: RoutesConfig, fresh_standin: Any, message: str) -> Any:
    use = next(u for u in doctor.model_uses([config]) if "anthropic." in u.model_id)
    fresh_standin.inject_fault(use.model_id, "AccessDeniedException", message=message)
    return use


def test_a_marketplace_refusal_names_the_marketplace_permissions(
    blog: RoutesConfig, fresh_standin: Any, bedrock_client: Any
) -> None:
    use = denied_use(blog, fresh_standin, "Model access is denied due to IAM user or service "
                     "role is not authorized to perform the required AWS Marketplace actions "
                     "(aws-marketplace:ViewSubscriptions, aws-marketplace:Subscribe)")
    check = doctor.check_invoke(use, bedrock_client, REGION, bedrock=StubbedBedrock().client)
    assert check.fix == marketplace_fix(use.model_id)


def test_an_anthropic_model_without_the_form_says_submit_it(
    blog: RoutesConfig, fresh_standin: Any, bedrock_client: Any
) -> None:
    use = denied_use(blog, fresh_standin, "You don't have access to the model.")
    bedrock = StubbedBedrock()
    bedrock.stubber.add_response(
        "get_foundation_model_availability",
        {"modelId": use.model_id.split(".", 1)[-1] if doctor.profile_prefix(use.model_id)
         else use.model_id,
         "agreementAvailability": {"status": "AVAILABLE"}, "authorizationStatus": "AUTHORIZED",
         "entitlementAvailability": "AVAILABLE", "regionAvailability": "AVAILABLE"},
    )
    bedrock.error("get_use_case_for_model_access", "ResourceNotFoundException", "none", 404)
    check = doctor.check_invoke(use, bedrock_client, REGION, bedrock=bedrock.client)
    assert check.fix == FORM_FIX
    bedrock.assert_all_used()


def test_a_denied_model_is_told_from_an_unentitled_one(
    blog: RoutesConfig, fresh_standin: Any, bedrock_client: Any
) -> None:
    use = denied_use(blog, fresh_standin, "You don't have access to the model.")
    base = use.model_id.split(".", 1)[-1] if doctor.profile_prefix(use.model_id) else use.model_id
    bedrock = StubbedBedrock()
    bedrock.stubber.add_response(
        "get_foundation_model_availability",
        {"modelId": base, "agreementAvailability": {"status": "AVAILABLE"},
         "authorizationStatus": "NOT_AUTHORIZED", "entitlementAvailability": "AVAILABLE",
         "regionAvailability": "AVAILABLE"},
    )
    check = doctor.check_invoke(use, bedrock_client, REGION, bedrock=bedrock.client)
    assert check.fix is not None and "service control policy denies" in check.fix


def test_a_profile_routing_outside_the_granted_regions_fails_with_the_setting(
    current: RoutesConfig,
) -> None:
    use = next(u for u in doctor.model_uses([current]) if doctor.profile_prefix(u.model_id))
    prefix = doctor.profile_prefix(use.model_id)
    bedrock = StubbedBedrock()
    base = use.model_id.split(".", 1)[1]
    answer = profile(use.model_id)
    answer["models"].append({"modelArn": f"arn:aws:bedrock:ca-central-1::foundation-model/{base}"})
    bedrock.stubber.add_response(
        "get_inference_profile", answer, {"inferenceProfileIdentifier": use.model_id}
    )
    check = check_profile(use, bedrock.client, REGION, prefix)
    assert check is not None and check.status == doctor.FAIL
    assert f"inference_profile_regions.{prefix}" in (check.fix or "")
    assert "ca-central-1" in (check.fix or "")
