"""Model access as Bedrock grants it today, and the exact fix when a first call is refused.

Bedrock retired its "Model access" page in 2025: every serverless model is enabled for an
account on its first invocation. For a third-party model that first call subscribes the account
through AWS Marketplace in the background, which needs ``aws-marketplace:Subscribe``,
``aws-marketplace:Unsubscribe`` and ``aws-marketplace:ViewSubscriptions`` on the identity that
makes it and a valid payment method; Anthropic models also need the first-time-use form (use case
details), submitted once per account or organization (Amazon Bedrock User Guide, "Access Amazon
Bedrock foundation models"). A refused call is diagnosed with ``GetFoundationModelAvailability``
(is the account entitled, authorized, is the model in this region) and, for Anthropic,
``GetUseCaseForModelAccess``; when those cannot be read the error message decides.
"""

from __future__ import annotations

from typing import Any

from .checks import error_code

MARKETPLACE_ACTIONS = (
    "aws-marketplace:Subscribe",
    "aws-marketplace:Unsubscribe",
    "aws-marketplace:ViewSubscriptions",
)
FORM_FIX = (
    "Submit Anthropic's first-time-use form (use case details) once for this account: Bedrock "
    "console -> Model catalog -> any Anthropic model -> submit use case details (or `aws bedrock "
    "put-use-case-for-model-access`), wait a few minutes, then run doctor again."
)


def marketplace_fix(model_id: str) -> str:
    return (
        f"The first call to {model_id} subscribes the account through AWS Marketplace: allow "
        f"{', '.join(MARKETPLACE_ACTIONS)} for the identity you run doctor (and deploy) with, make "
        "sure the account has a valid payment method, then run doctor again (the subscription "
        "takes up to 2 minutes to complete)."
    )


def first_call_fix(model_id: str) -> str:
    """What to do when a first call is refused and nothing more specific is known."""
    fix = "Models are enabled on their first call (the Model access page is retired). "
    fix += marketplace_fix(model_id)
    return fix + (f" {FORM_FIX}" if "anthropic." in model_id else "")


def base_model(model_id: str, profile_prefix: str | None) -> str:
    return model_id.split(".", 1)[1] if profile_prefix else model_id


def availability(bedrock: Any, model_id: str) -> dict[str, Any] | None:
    """GetFoundationModelAvailability of ``model_id``, None when it cannot be read."""
    try:
        return bedrock.get_foundation_model_availability(modelId=model_id)
    except Exception:  # not allowed to ask, not in this botocore, not stubbed: fall back
        return None


def anthropic_form_missing(bedrock: Any) -> bool | None:
    """Whether the account has not submitted Anthropic's use case details; None: unknown."""
    try:
        bedrock.get_use_case_for_model_access()
    except Exception as exc:
        code, _ = error_code(exc)
        return True if code == "ResourceNotFoundException" else None
    return False


def diagnose_refusal(
    model_id: str, base: str, message: str, bedrock: Any, region: str
) -> str | None:
    """The fix for an AccessDeniedException from ``model_id``, or None when nothing specific."""
    text = message.lower()
    if "aws-marketplace" in text or "marketplace" in text:
        return marketplace_fix(model_id)
    anthropic = base.startswith("anthropic.")
    if anthropic and ("use case" in text or "first-time" in text or "form" in text):
        return FORM_FIX
    found = availability(bedrock, base)
    if found is not None:
        if found.get("regionAvailability") == "NOT_AVAILABLE":
            return f"{base} is not offered in {region}: deploy to a region that offers it."
        if found.get("authorizationStatus") == "NOT_AUTHORIZED":
            return (
                f"An IAM policy or service control policy denies {base} to this identity: allow "
                "bedrock:InvokeModel on it (and on the inference profile you call it through)."
            )
        if found.get("entitlementAvailability") == "NOT_AVAILABLE":
            return marketplace_fix(model_id)
    if anthropic and anthropic_form_missing(bedrock):
        return FORM_FIX
    return None
