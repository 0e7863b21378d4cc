"""``scripts/local.py --fault`` and ``--delay``: parsing, and their effect on the stand-in a local
run starts (in-process, with a real boto3 client, so no subprocess is needed)."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import SONNET
from llm_router.models.bedrock import runtime_client
from local import (
    Delay,
    Fault,
    api_settings,
    apply_faults_and_delays,
    parse_args,
    parse_delay,
    parse_fault,
)
from local_api import ApiSettings


def test_fault_with_probability_keeps_the_colon_of_the_model_id() -> None:
    assert parse_fault(f"{SONNET}=ThrottlingException:0.5") == Fault(
        SONNET, "ThrottlingException", 0.5
    )
    assert parse_fault("*=ServiceUnavailableException") == Fault(
        "*", "ServiceUnavailableException", None
    )


@pytest.mark.parametrize("text", [
    SONNET, f"{SONNET}=", "=ThrottlingException", f"{SONNET}=Nope",
    f"{SONNET}=ThrottlingException:x", f"{SONNET}=ThrottlingException:0",
    f"{SONNET}=ThrottlingException:1.5",
])
def test_bad_fault_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_fault(text)


def test_delay() -> None:
    assert parse_delay(f"{SONNET}=40") == Delay(SONNET, 40.0)
    for bad in (SONNET, f"{SONNET}=-1", f"{SONNET}=soon", f"{SONNET}=nan"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_delay(bad)


def test_command_line_repeats_and_refuses_aws() -> None:
    args = parse_args(["--fault", f"{SONNET}=ThrottlingException:0.3",
                       "--fault", "*=InternalServerException", "--delay", f"{SONNET}=2"])
    assert [f.error for f in args.fault] == ["ThrottlingException", "InternalServerException"]
    assert args.delay == [Delay(SONNET, 2.0)]
    with pytest.raises(SystemExit):
        parse_args(["--bedrock", "aws", "--fault", f"{SONNET}=ThrottlingException"])


def test_limits_can_be_raised_for_load_tests() -> None:
    base = ApiSettings(api_key="k", rate_limit=10, burst_limit=20, max_question_chars=9,
                       quota_per_day=10_000)
    raised = api_settings(base, parse_args(["--rate-limit", "500", "--burst-limit", "900",
                                            "--quota", "0"]))
    assert (raised.rate_limit, raised.burst_limit, raised.quota_per_day) == (500, 900, None)
    assert api_settings(base, parse_args([])) == base


def test_faults_and_delays_reach_the_stand_in(fresh_standin: Any) -> None:
    lines = apply_faults_and_delays(
        fresh_standin,
        [Fault(SONNET, "ThrottlingException", None)],
        [Delay("*", 0.01)],
    )
    assert lines == [
        f"  fault: {SONNET} fails with ThrottlingException (every call)",
        "  delay: * answers after 0.01 s",
    ]
    client = runtime_client("us-east-1", fresh_standin.url, max_attempts=1, credentials=("t", "t"))
    with pytest.raises(ClientError) as info:
        client.converse(modelId=SONNET, messages=[{"role": "user", "content": [{"text": "x"}]}])
    assert info.value.response["Error"]["Code"] == "ThrottlingException"
    assert fresh_standin.calls()[-1]["delayed_seconds"] >= 0.01
