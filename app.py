#!/usr/bin/env python3
"""CDK entry point: one router stack per routing strategy (see stacks/app_builder.py).

npx cdk synth --all [-c architecture=x86_64] [-c preset=current]
    [-c semanticIndexEmbeddings=auto|bedrock|stand-in]
"""

from __future__ import annotations

import sys

import aws_cdk as cdk

from stacks.app_builder import USER_ERRORS, build_app


def main() -> int:
    app = cdk.App()
    try:
        build_app(app)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
