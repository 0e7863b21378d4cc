"""Every model of the presets: its lifecycle, its inference profile, one tiny real call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llm_router.config import RoutesConfig
from llm_router.decision.embeddings import TitanEmbedder
from llm_router.models.bedrock import BedrockFailure

from .access import base_model, diagnose_refusal, first_call_fix
from .checks import FAIL, OK, SKIP, WARN, Check, error_code

# Geographic prefixes of system inference profile ids (as stacks/model_access.py knows them).
PROFILE_PREFIXES = frozenset({"us", "us-gov", "eu", "apac", "jp", "au", "ca", "global"})
PROBE_TEXT = "ping"


@dataclass(frozen=True)
class ModelUse:
    """A configured model and what the presets use it for."""

    model_id: str
    roles: tuple[str, ...]
    config: RoutesConfig  # a preset that uses it (for the embedding request's settings)

    @property
    def is_embedding(self) -> bool:
        return self.model_id == self.config.embedding.model_id


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
    # The stacks grant the foundation model in the regions routes.json lists for the prefix; a
    # destination outside them is an AccessDenied for the requests that land there.
    destinations = sorted({m["modelArn"].split(":")[3] for m in profile.get("models", [])})
    missing = [r for r in destinations if r not in (regions or ())]
    if missing:
        return Check(
            f"{use.model_id} inference profile regions",
            FAIL,
            f"routes to {', '.join(destinations)}; the stacks grant {prefix}. profiles in "
            f"{', '.join(regions or ()) or 'no region'}",
            f"Set inference_profile_regions.{prefix} in routes.json to include "
            f"{', '.join(missing)} and redeploy (IAM denies the requests Bedrock sends there).",
        )
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
        return first_call_fix(use.model_id)
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


def check_invoke(
    use: ModelUse, runtime: Any, region: str, legacy: bool = False, bedrock: Any | None = None
) -> Check:
    """One tiny real call, as the routers make it: Converse, or the embedder on a short text.
    A refusal is diagnosed with the ``bedrock`` control plane when given (``access.py``)."""
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
    fix = None
    if code == "AccessDeniedException" and bedrock is not None and not legacy:
        base = base_model(use.model_id, profile_prefix(use.model_id))
        fix = diagnose_refusal(use.model_id, base, message, bedrock, region)
    return Check(
        name, FAIL, f"{code}: {message}", fix or access_fix(code, message, use, region, legacy)
    )
