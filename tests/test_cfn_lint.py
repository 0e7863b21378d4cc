"""cfn-lint over every variant of the app a user can synthesize: each model preset of routes.json,
and the options that add resources (WAF on, alarm e-mail on). No error and no warning (less the
ones ``stack_synth.CFN_LINT_IGNORED`` names, with why) in any stack's template.

The presets are read from routes.json, so a preset added there is linted without a change here.
Each variant is one synthesis with bundling skipped; the default and ``current`` ones are the
session's shared synths (tests/test_stacks.py reads them too).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from llm_router.config import load_routes
from stack_synth import Synth, shared_synth, synth

EMAIL = "ops@example.com"
PRESETS = sorted(load_routes().raw["presets"])


@pytest.mark.parametrize("preset", PRESETS)
def test_each_preset_lints_clean(preset: str) -> None:
    synthesized = shared_synth(preset=preset)
    assert synthesized.templates
    assert {name: synthesized.lint(name) for name in synthesized.templates} == dict.fromkeys(
        synthesized.templates, []
    )


def test_waf_and_alarm_email_lint_clean(tmp_path: Path) -> None:
    synthesized: Synth = synth(tmp_path, waf="true", alarmEmail=EMAIL)
    for name, template in synthesized.templates.items():
        kinds = {r["Type"] for r in template["Resources"].values()}
        assert {"AWS::WAFv2::WebACL", "AWS::SNS::Subscription"} <= kinds, name  # options on
    assert {name: synthesized.lint(name) for name in synthesized.templates} == dict.fromkeys(
        synthesized.templates, []
    )
