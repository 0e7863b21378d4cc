"""Synthesizing the CDK app in-process for the stack tests, and reading the templates back.

Shared by tests/test_stacks.py and tests/test_stack_*.py; not a test module itself. Synthesis
takes seconds per app, so the default app (and the ``current`` preset's) is synthesized once per
session by :func:`shared_synth` and read by every file.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template
from llm_router.config import ROUTES_FILE_ENV
from llm_router.pipeline.strategies import Strategy

from stacks.feedback_api import FEEDBACK_HANDLER
from stacks.model_access import ArnScope
from stacks.router_api import HANDLER
from stacks.synthesis import synth_app

PLACEHOLDERS = ArnScope("${AWS::Partition}", "${AWS::Region}", "${AWS::AccountId}")
# CDK puts an explicit DependsOn on a function's role next to the GetAtt; harmless and generated.
CFN_LINT_IGNORED = {"W3005"}
CFN_LINT_REGIONS = ["us-east-1", "eu-west-1"]


@dataclass
class Synth:
    outdir: Path
    templates: dict[str, dict[str, Any]]

    def template(self, strategy: Strategy) -> Template:
        return Template.from_json(self.templates[strategy.stack_name])

    def resources(self, strategy: Strategy, kind: str) -> dict[str, Any]:
        resources = self.templates[strategy.stack_name]["Resources"]
        return {k: v for k, v in resources.items() if v["Type"] == kind}

    def one(self, strategy: Strategy, kind: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(strategy, kind)
        assert len(found) == 1, f"{strategy.stack_name}: {len(found)} {kind}"
        return next(iter(found.items()))

    def function(self, strategy: Strategy, handler: str = HANDLER) -> tuple[str, dict[str, Any]]:
        """The one function with ``handler`` (the router's by default)."""
        found = {
            k: v
            for k, v in self.resources(strategy, "AWS::Lambda::Function").items()
            if v["Properties"]["Handler"] == handler
        }
        assert len(found) == 1, f"{strategy.stack_name}: {len(found)} functions {handler}"
        return next(iter(found.items()))

    def feedback_function(self, strategy: Strategy) -> tuple[str, dict[str, Any]]:
        return self.function(strategy, FEEDBACK_HANDLER)

    def statements(self, strategy: Strategy, handler: str = HANDLER) -> list[dict[str, Any]]:
        """The statements of the policy attached to the role of the function with ``handler``."""
        _, function = self.function(strategy, handler)
        role = function["Properties"]["Role"]["Fn::GetAtt"][0]
        policies = [
            p
            for p in self.resources(strategy, "AWS::IAM::Policy").values()
            if {"Ref": role} in p["Properties"]["Roles"]
        ]
        assert len(policies) == 1
        return policies[0]["Properties"]["PolicyDocument"]["Statement"]

    def method(self, strategy: Strategy, path: str, http_method: str) -> dict[str, Any]:
        """The properties of ``http_method`` on the API resource ``/<path>``."""
        resources = self.resources(strategy, "AWS::ApiGateway::Resource")
        resource_id = next(k for k, v in resources.items() if v["Properties"]["PathPart"] == path)
        found = [
            m["Properties"]
            for m in self.resources(strategy, "AWS::ApiGateway::Method").values()
            if m["Properties"]["ResourceId"] == {"Ref": resource_id}
            and m["Properties"]["HttpMethod"] == http_method
        ]
        assert len(found) == 1
        return found[0]

    def acknowledged(self, strategy: Strategy) -> dict[str, set[str]]:
        """Construct path -> the cdk-nag rules acknowledged on it (from the stack's metadata)."""
        metadata = json.loads((self.outdir / f"{strategy.stack_name}.metadata.json").read_text())
        rules: dict[str, set[str]] = {}
        for path, entries in metadata.items():
            for entry in entries:
                if entry["type"] == "aws:cdk:acknowledged-rules":
                    rules.setdefault(path, set()).update(
                        r.removeprefix("Annotation::") for r in entry["data"]
                    )
        return rules

    def lint(self, stack_name: str) -> list[str]:
        """cfn-lint's findings on one synthesized template (errors and warnings), less the
        ignored ones."""
        from cfnlint.api import ManualArgs, lint_file

        path = self.outdir / f"{stack_name}.template.json"
        matches = lint_file(path, config=ManualArgs(regions=CFN_LINT_REGIONS))
        return [str(m) for m in matches if m.rule.id not in CFN_LINT_IGNORED]

    def nag_errors(self) -> list[tuple[str, str]]:
        """(rule, construct path) of every error in the validation report."""
        report = json.loads((self.outdir / "validation-report.json").read_text())
        return [
            (v["ruleName"], c["constructPath"])
            for plugin in report["pluginReports"]
            for v in plugin["violations"]
            if v["severity"] == "error"
            for c in v["violatingConstructs"]
        ]


def synth(outdir: Path, bundling: bool = False, **context: Any) -> Synth:
    """Synthesize the app as `cdk synth` would: cdk.json's context plus ``context``."""
    _, assembly, stacks = synth_app(outdir, bundling, **context)
    return Synth(
        outdir, {s.stack_name: assembly.get_stack_by_name(s.stack_name).template for s in stacks}
    )


def shared_synth(**context: Any) -> Synth:
    """One synthesis per routes file and context for the whole session (test files share it;
    read-only)."""
    return _shared_synth(os.environ.get(ROUTES_FILE_ENV), **context)


@functools.cache
def _shared_synth(_routes_file: str | None, **context: Any) -> Synth:
    outdir = Path(tempfile.mkdtemp(prefix="cdk-out-"))
    atexit.register(shutil.rmtree, outdir, ignore_errors=True)
    return synth(outdir, **context)


@contextmanager
def routes_file(path: Path) -> Iterator[Path]:
    """Make ``path`` the routes.json the app (and load_routes) reads, for the ``with`` block."""
    before = os.environ.get(ROUTES_FILE_ENV)
    os.environ[ROUTES_FILE_ENV] = str(path)
    try:
        yield path
    finally:
        if before is None:
            os.environ.pop(ROUTES_FILE_ENV, None)
        else:
            os.environ[ROUTES_FILE_ENV] = before


def render(value: Any) -> str:
    """A CloudFormation string value with pseudo-parameter Refs rendered as ${AWS::...}."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(p) for p in parts)
    if isinstance(value, dict) and "Ref" in value:
        return "${" + value["Ref"] + "}"
    raise AssertionError(f"unexpected CloudFormation value {value!r}")


def render_url(value: Any) -> str:
    """Like render, but resource Refs (the API and stage ids) become ${LogicalId}."""
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render_url(p) for p in parts)
    return render(value)


def bedrock_resources(synth: Synth, strategy: Strategy) -> list[str]:
    """The rendered resources of the router's one ``bedrock:InvokeModel`` statement."""
    bedrock = [s for s in synth.statements(strategy) if s["Action"] == "bedrock:InvokeModel"]
    assert len(bedrock) == 1
    resources = bedrock[0]["Resource"]
    return [render(r) for r in (resources if isinstance(resources, list) else [resources])]
