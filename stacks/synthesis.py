"""Synthesizing the CDK app in-process, as ``cdk synth`` would, for tests and the local run.

The templates are what AWS will enforce (IAM policies, environments, tables), so the offline
world reads them instead of restating them: the stack tests assert on them and the local run
gives each function exactly its synthesized role (``scripts/offline_iam``). Without bundling
(the default here) no layer is built: a synth takes seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from layers import REPO_ROOT
from stacks.app_builder import build_app


def synth_app(outdir: Path, bundling: bool = False, **context: Any) -> tuple[cdk.App, Any, list]:
    """The app, its cloud assembly and its stacks: cdk.json's context plus ``context``, with the
    stand-in's embeddings for the semantic index (never real Bedrock offline)."""
    settings = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    settings["semanticIndexEmbeddings"] = "stand-in"
    if not bundling:
        settings["aws:cdk:bundling-stacks"] = []
    settings.update(context)
    app = cdk.App(context=settings, outdir=str(outdir))
    stacks = build_app(app)
    return app, app.synth(), stacks


def synth_templates(outdir: Path, **context: Any) -> dict[str, dict[str, Any]]:
    """Stack name -> its synthesized CloudFormation template."""
    _, assembly, stacks = synth_app(outdir, **context)
    return {s.stack_name: assembly.get_stack_by_name(s.stack_name).template for s in stacks}


def main(argv: list[str] | None = None) -> int:
    """``python -m stacks.synthesis --out FILE [--preset NAME]``: every stack's template as JSON
    (what the local run reads; a subprocess keeps jsii out of the caller's process)."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--preset", help="the preset to synthesize (default: routes.json's)")
    args = parser.parse_args(argv)
    context = {"preset": args.preset} if args.preset else {}
    with tempfile.TemporaryDirectory(prefix="cdk-out-") as outdir:
        templates = synth_templates(Path(outdir), **context)
    args.out.write_text(json.dumps(templates))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
