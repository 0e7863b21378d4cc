"""The one place the router functions' runtime and CPU are decided.

The function, its layers' compatible runtime/architecture and the pip platform the layers are
built for all come from the same :class:`LambdaTarget`, so a layer built for another Python or
CPU than the function runs cannot be synthesized.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import aws_lambda as lambda_

from layers.build import Platform

ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}
MIN_PYTHON = (3, 12)  # project rule: Lambda runtimes python3.12 or newer


class TargetError(ValueError):
    """The configured runtime or architecture is not one the routers can use."""


@dataclass(frozen=True)
class LambdaTarget:
    runtime: lambda_.Runtime
    architecture: lambda_.Architecture

    @classmethod
    def of(cls, runtime_name: str, architecture_name: str) -> LambdaTarget:
        """From routes.json's ``lambda.runtime`` and the (context-overridable) architecture."""
        if architecture_name not in ARCHITECTURES:
            raise TargetError(
                f"architecture must be one of {', '.join(ARCHITECTURES)}, got {architecture_name!r}"
            )
        return cls(python_runtime(runtime_name), ARCHITECTURES[architecture_name])

    @property
    def platform(self) -> Platform:
        """What the layers are pip-installed for, derived from this target's runtime and CPU."""
        return Platform.for_lambda(self.runtime.name, self.architecture.name)

    def __str__(self) -> str:
        return f"{self.runtime.name} {self.architecture.name}"


def python_runtime(name: str) -> lambda_.Runtime:
    """The CDK Runtime for ``python3.N`` (N >= 12): the library's constant when it has one."""
    match = re.fullmatch(r"python3\.(\d+)", name)
    if not match or (3, int(match.group(1))) < MIN_PYTHON:
        raise TargetError(f"lambda.runtime must be python3.{MIN_PYTHON[1]} or newer, got {name!r}")
    constant = getattr(lambda_.Runtime, f"PYTHON_3_{match.group(1)}", None)
    if isinstance(constant, lambda_.Runtime) and constant.name == name:
        return constant
    # Newer than this aws-cdk-lib knows: CloudFormation takes the name as is.
    return lambda_.Runtime(name, lambda_.RuntimeFamily.PYTHON)
