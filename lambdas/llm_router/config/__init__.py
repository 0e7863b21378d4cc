"""The routes configuration: the one file every part of the router reads.

`routes.json` holds the categories, the answerer model per category, the default category, the
classifier and embedding models, the reference prompts and the deployment sizing. The CDK stacks
read it for IAM and layer contents, the Lambdas at cold start, and every script for local runs, so
changing a model or adding a category is an edit to that file and a redeploy, nothing else.

The file is looked up in this order: the path in ``ROUTES_FILE``; ``routes.json`` beside this
package (how it ships inside the Lambda asset); the repository root (a checkout). The model preset
comes from ``ROUTES_PRESET`` when set, otherwise from ``active_preset`` in the file.

The function itself reads ``routes.compiled.json`` when it sits beside the package (only the
Lambda asset has one): routes.json as validated when the asset was built
(``layers.function_asset.compile_routes``), without the reference prompts the function never
reads (the LLM classifier's few examples stay) and with their hash, which the semantic index's
manifest is checked against, computed once there instead of at every cold start. routes.json
stays the one source: the compiled file is derived from it in the same build step.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any

from ..records import record
from .cache import CacheConfigError, CacheSettings, parse_cache
from .settings import (
    ModelPrice,
    ResilienceSettings,
    ResponseSettings,
    SettingsError,
    Tier,
    parse_prices,
    parse_resilience,
    parse_response,
    parse_tiers,
    priced_model_id,
)
from .targets import TargetPlan, TargetSpecError, parse_plan
from .topic_bank import AUTO, TopicBankError, load_topic_bank, uses_topic_bank
from .topic_bank import MATCHING_VERSION as TOPIC_MATCHING_VERSION

ROUTES_FILE_ENV = "ROUTES_FILE"
ROUTES_PRESET_ENV = "ROUTES_PRESET"
COMPILED_ROUTES_FILE = "routes.compiled.json"
COMPILED_FORMAT = 1
_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # llm_router/, above config/
_CANDIDATE_PATHS = (
    _PACKAGE_DIR.parent / "routes.json",  # inside the Lambda asset
    _PACKAGE_DIR.parent.parent / "routes.json",  # repository checkout
)
VALID_TITAN_V2_DIMENSIONS = (256, 512, 1024)
MAX_STREAM_DEADLINE_SECONDS = 840  # API Gateway cuts a streamed integration at 900 s
# The label of "none of the categories": a reference class of its own in the semantic index and
# the decision the routers report for off-topic questions. No category may use this name.
OUT_OF_SCOPE = "out_of_scope"
# decline: answer with the decline message, no model call; default: the default category's
# targets; cheapest: the cheapest answer target, whose system prompt declines off-topic questions.
OUT_OF_SCOPE_ACTIONS = ("decline", "default", "cheapest")
# What a caller-named "category" may do (api.caller_category): trust it, use it only for questions
# that are in scope (check), or refuse it (off).
CALLER_CATEGORY_POLICIES = ("trust", "check", "off")
# Where an unrecognised classifier output goes (classifier.unrecognised_output).
UNRECOGNISED_OUTPUT_POLICIES = ("out_of_scope", "default_category")


DEFAULT_CLASSIFIER_INTRO = "You route questions to the assistant for their topic."


class ConfigError(ValueError):
    """The routes configuration is missing, malformed or inconsistent."""


def optional_section(
    raw: Mapping[str, Any], name: str, known: Iterable[str]
) -> Mapping[str, Any]:
    """routes.json's section ``name`` (an object, {} when absent) whose keys are all ``known``
    (keys starting with ``_`` are notes); else a ConfigError naming the section and the keys."""
    section = raw.get(name)
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{name} must be an object, got {section!r}")
    unknown = sorted(k for k in section if not str(k).startswith("_") and k not in known)
    if unknown:
        raise ConfigError(f"{name}: unknown keys {unknown}; known: {sorted(known)}")
    return section


@record(frozen=True)
class Category:
    name: str
    description: str
    answer_plan: TargetPlan
    reference_prompts: tuple[str, ...]

    @property
    def answerer_model_id(self) -> str:
        """The plan's primary target: the model a single-model view (the sample's) names."""
        return self.answer_plan.primary


@record(frozen=True)
class EmbeddingConfig:
    model_id: str
    dimensions: int
    normalize: bool


@record(frozen=True)
class ClassifierConfig:
    model_id: str
    max_output_tokens: int
    temperature: float
    unrecognised_output: str = "out_of_scope"
    # The classification prompt's first sentence (``classifier.prompt_intro``): who the router
    # routes for, in the user's words, so no domain is written into code.
    prompt_intro: str = DEFAULT_CLASSIFIER_INTRO


@record(frozen=True)
class AnsweringConfig:
    max_tokens: int
    temperature: float
    system_prompt: str


@record(frozen=True)
class OutOfScopeConfig:
    """What to do with questions that match no category: decline them or use the default."""

    action: str
    decline_message: str
    reference_prompts: tuple[str, ...]
    # Train against the project's topic bank too (``topic_bank``: true, false, or "auto", the
    # default, for fewer than TOPIC_BANK_AUTO_BELOW off-topic prompts; matched to the categories
    # when the index is built, ``decision.topic_adoption``).
    topic_bank: bool = False


@record(frozen=True)
class SemanticThresholds:
    """Semantic decision thresholds, chosen by ``scripts/evaluate.py --fit``.

    ``min_similarity`` per category: a winning category whose best similarity is below it is out
    of scope. ``min_margin``: how far the winner's best similarity must lead the best off-topic
    reference's, else the question is out of scope.
    The hybrid router escalates to the classifier LLM when the semantic decision is below
    ``hybrid_min_similarity`` or ``hybrid_min_margin``.
    """

    min_similarity: Mapping[str, float]
    min_margin: float
    hybrid_min_similarity: float
    hybrid_min_margin: float


@record(frozen=True)
class ApiConfig:
    max_question_chars: int
    throttle_rate_limit: float
    throttle_burst_limit: int
    quota_requests_per_day: int
    integration_timeout_seconds: float = 29.0
    caller_category: str = "check"
    # POST /ask/stream's own deadline: a streamed answer may run far past /ask's 29 s, within
    # API Gateway's 15-minute limit for streamed integrations.
    stream_deadline_seconds: float = 120.0


@record(frozen=True)
class LambdaConfig:
    runtime: str
    architecture: str
    memory_mb: int
    timeout_seconds: int  # derived: the request budget plus resilience.function_timeout_margin
    log_retention_days: int


@record(frozen=True)
class RoutesConfig:
    preset: str
    categories: Mapping[str, Category]
    default_category: str
    classifier: ClassifierConfig
    embedding: EmbeddingConfig
    semantic_k: int
    thresholds: SemanticThresholds
    out_of_scope: OutOfScopeConfig
    answering: AnsweringConfig
    api: ApiConfig
    lambda_settings: LambdaConfig
    inference_profile_regions: Mapping[str, tuple[str, ...]]
    prompt_router_targets: Mapping[str, tuple[str, ...]]
    tiers: Mapping[str, Tier] = field(default_factory=dict)
    default_tier: str = "standard"
    resilience: ResilienceSettings = field(default_factory=lambda: parse_resilience({}))
    response: ResponseSettings = field(default_factory=lambda: parse_response({}))
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)
    cache: CacheSettings = field(default_factory=CacheSettings)
    source_path: Path | None = field(default=None, compare=False)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # The reference prompts' hash as computed when a compiled configuration was built (its
    # prompts are trimmed); None: computed from the prompts.
    prompts_sha256: str | None = field(default=None, compare=False, repr=False)

    @property
    def category_names(self) -> tuple[str, ...]:
        return tuple(self.categories)

    def answerer_for(self, category: str, tier: str | None = None) -> str:
        """The primary answer target of a category (for a tier, with its overrides)."""
        return self.plan_for(category, tier).primary

    def plan_for(self, category: str, tier: str | None = None) -> TargetPlan:
        """A category's answer targets; a tier's override replaces the preset's plan."""
        override = self.tiers.get(tier or self.default_tier)
        if override is not None and category in override.answerers:
            return override.answerers[category]
        return self.categories[category].answer_plan

    def answerer_model_ids(self) -> tuple[str, ...]:
        """Every model that may answer, in any tier, fallbacks included, in category order."""
        ids: list[str] = []
        for category in self.categories:
            ids.extend(self.categories[category].answer_plan.model_ids())
            for tier in self.tiers.values():
                if category in tier.answerers:
                    ids.extend(tier.answerers[category].model_ids())
        return tuple(dict.fromkeys(ids))

    def price_of(self, model_id: str) -> ModelPrice | None:
        """USD per 1,000 tokens for a model or inference profile; None when unknown."""
        return self.prices.get(model_id) or self.prices.get(priced_model_id(model_id))

    def cheapest_category(self, tier: str | None = None) -> str:
        """The category whose primary target has the lowest output price (unknown prices last)."""

        def cost(category: str) -> float:
            price = self.price_of(self.answerer_for(category, tier))
            return price.output_per_1k + price.input_per_1k if price else math.inf

        return min(self.categories, key=cost)

    def dearest_category(self, tier: str | None = None) -> str:
        """The category whose primary target has the highest price (unknown prices first out):
        the premium one, that every question would go to without a router."""

        def cost(category: str) -> float:
            price = self.price_of(self.answerer_for(category, tier))
            return price.output_per_1k + price.input_per_1k if price else -math.inf

        return max(self.categories, key=cost)

    @property
    def request_budget_seconds(self) -> float:
        """What one request may take: API Gateway's integration timeout less a response margin."""
        return self.api.integration_timeout_seconds - self.resilience.response_margin_seconds

    @property
    def stream_budget_seconds(self) -> float:
        """What one streamed answer may take (``api.stream_deadline_seconds``)."""
        return self.api.stream_deadline_seconds

    @property
    def stream_function_timeout_seconds(self) -> int:
        """The streaming function's timeout: its deadline plus the function's margin."""
        return math.ceil(
            self.api.stream_deadline_seconds + self.resilience.function_timeout_margin_seconds
        )

    def all_model_ids(self) -> tuple[str, ...]:
        """Every model the routers may invoke: classifier, embedder and answerers."""
        return tuple(
            dict.fromkeys(
                (self.classifier.model_id, self.embedding.model_id, *self.answerer_model_ids())
            )
        )

    def reference_prompts(self) -> list[tuple[str, str]]:
        """(label, prompt) pairs in a stable order: the rows of the semantic index.

        Labels are the categories plus OUT_OF_SCOPE for the off-topic reference prompts.
        """
        rows = [(c.name, p) for c in self.categories.values() for p in c.reference_prompts]
        rows.extend((OUT_OF_SCOPE, p) for p in self.out_of_scope.reference_prompts)
        return rows

    def reference_prompts_hash(self) -> str:
        """SHA-256 of the labelled reference prompts; the semantic index manifest records it."""
        if self.prompts_sha256 is not None:
            return self.prompts_sha256
        content: Any = self.reference_prompts()
        if self.out_of_scope.topic_bank:  # the bank's rows join the index: its content counts
            try:
                content = {
                    "reference_prompts": content,
                    "topic_bank": load_topic_bank(),
                    "matching_version": TOPIC_MATCHING_VERSION,
                }
            except TopicBankError as exc:
                raise ConfigError(str(exc)) from exc
        payload = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _text(section: Mapping[str, Any], key: str, default: str, where: str) -> str:
    value = section.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}.{key} must be a non-empty string, got {value!r}")
    return value.strip()


def find_routes_file() -> Path:
    explicit = os.environ.get(ROUTES_FILE_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{ROUTES_FILE_ENV}={explicit} does not name a file")
        return path
    for candidate in _CANDIDATE_PATHS:
        if candidate.is_file():
            return candidate
    raise ConfigError(
        "routes.json not found: set ROUTES_FILE or place it beside the llm_router package"
    )


def load_routes(path: str | Path | None = None, preset: str | None = None) -> RoutesConfig:
    """Read and validate the routes configuration (the compiled one inside the Lambda asset)."""
    compiled = _PACKAGE_DIR.parent / COMPILED_ROUTES_FILE
    if path is None and not os.environ.get(ROUTES_FILE_ENV) and compiled.is_file():
        return load_compiled_routes(compiled, preset)
    source = Path(path) if path else find_routes_file()
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read routes configuration {source}: {exc}") from exc
    return parse_routes(raw, preset=preset, source_path=source)


def load_compiled_routes(path: Path, preset: str | None = None) -> RoutesConfig:
    """The function's configuration from ``routes.compiled.json`` (see the module docstring)."""
    try:
        compiled = json.loads(path.read_text(encoding="utf-8"))
        if compiled.get("format") != COMPILED_FORMAT:
            found = compiled.get("format")
            raise ConfigError(f"{path} has format {found!r}, expected {COMPILED_FORMAT}")
        raw, prompts_sha256 = compiled["routes"], compiled["reference_prompts_sha256"]
    except (OSError, json.JSONDecodeError, KeyError, AttributeError) as exc:
        raise ConfigError(f"cannot read compiled routes configuration {path}: {exc}") from exc
    return parse_routes(raw, preset=preset, source_path=path, prompts_sha256=prompts_sha256)


def parse_routes(
    raw: Mapping[str, Any],
    preset: str | None = None,
    source_path: Path | None = None,
    prompts_sha256: str | None = None,
) -> RoutesConfig:
    """Build a validated RoutesConfig from the JSON document."""
    try:
        preset_name = preset or os.environ.get(ROUTES_PRESET_ENV) or raw["active_preset"]
        presets = raw["presets"]
        if preset_name not in presets:
            raise ConfigError(
                f"unknown preset {preset_name!r}; choose one of {', '.join(sorted(presets))}"
            )
        models = presets[preset_name]
        answerers: Mapping[str, str] = models["answerers"]
        categories_raw: Mapping[str, Any] = raw["categories"]
        if not categories_raw:
            raise ConfigError("at least one category is required")
        categories: dict[str, Category] = {}
        for name, spec in categories_raw.items():
            if name != name.strip().lower() or not name:
                raise ConfigError(f"category names must be lower-case labels, got {name!r}")
            if name == OUT_OF_SCOPE:
                raise ConfigError(f"{OUT_OF_SCOPE!r} is reserved for off-topic questions")
            if name not in answerers:
                raise ConfigError(f"preset {preset_name!r} names no answerer for category {name!r}")
            prompts = tuple(spec.get("reference_prompts", ()))
            categories[name] = Category(
                name=name,
                description=spec["description"],
                answer_plan=parse_plan(answerers[name], f"presets.{preset_name}.answerers.{name}"),
                reference_prompts=prompts,
            )
        extra = set(answerers) - set(categories)
        if extra:
            raise ConfigError(f"answerers for unknown categories: {', '.join(sorted(extra))}")
        default_category = raw["default_category"]
        if default_category not in categories:
            raise ConfigError(f"default_category {default_category!r} is not a category")
        embedding = EmbeddingConfig(
            model_id=models["embedding_model_id"],
            dimensions=int(raw["embedding"]["dimensions"]),
            normalize=bool(raw["embedding"]["normalize"]),
        )
        if (
            "titan-embed-text-v2" in embedding.model_id
            and embedding.dimensions not in VALID_TITAN_V2_DIMENSIONS
        ):
            raise ConfigError(
                f"Titan Text Embeddings V2 supports dimensions {VALID_TITAN_V2_DIMENSIONS}, "
                f"got {embedding.dimensions}"
            )
        semantic_k = int(raw["semantic"]["k"])
        if semantic_k < 1:
            raise ConfigError("semantic.k must be at least 1")
        semantic = raw["semantic"]
        min_similarity = {
            name: float(semantic.get("min_similarity", {}).get(name, 0.0)) for name in categories
        }
        hybrid = raw.get("hybrid", {})
        thresholds = SemanticThresholds(
            min_similarity=min_similarity,
            min_margin=float(semantic.get("min_margin", 0.0)),
            hybrid_min_similarity=float(hybrid.get("min_similarity", 0.0)),
            hybrid_min_margin=float(hybrid.get("min_margin", 0.0)),
        )
        oos = raw.get("out_of_scope", {})
        out_of_scope = OutOfScopeConfig(
            action=oos.get("action", "default"),
            decline_message=oos.get(
                "decline_message", "Sorry, I can only answer questions on my topics."
            ),
            reference_prompts=tuple(oos.get("reference_prompts", ())),
            topic_bank=uses_topic_bank(
                oos.get("topic_bank", AUTO), len(oos.get("reference_prompts", ()))
            ),
        )
        if out_of_scope.action not in OUT_OF_SCOPE_ACTIONS:
            raise ConfigError(f"out_of_scope.action must be one of {OUT_OF_SCOPE_ACTIONS}")
        api = raw["api"]
        for key in ("max_question_chars", "throttle_rate_limit", "throttle_burst_limit",
                    "quota_requests_per_day"):
            if not float(api[key]) > 0:
                raise ConfigError(f"api.{key} must be positive, got {api[key]!r}")
        caller_category = api.get("caller_category", "check")
        if caller_category not in CALLER_CATEGORY_POLICIES:
            raise ConfigError(f"api.caller_category must be one of {CALLER_CATEGORY_POLICIES}")
        unrecognised = raw["classifier"].get("unrecognised_output", "out_of_scope")
        if unrecognised not in UNRECOGNISED_OUTPUT_POLICIES:
            raise ConfigError(
                f"classifier.unrecognised_output must be one of {UNRECOGNISED_OUTPUT_POLICIES}"
            )
        resilience = parse_resilience(raw)
        integration_timeout = float(api.get("integration_timeout_seconds", 29))
        if not integration_timeout > resilience.response_margin_seconds:
            raise ConfigError(
                "api.integration_timeout_seconds must exceed resilience.response_margin_seconds"
            )
        stream_deadline = float(api.get("stream_deadline_seconds", 120))
        if not 0 < stream_deadline <= MAX_STREAM_DEADLINE_SECONDS:
            raise ConfigError(
                f"api.stream_deadline_seconds must be in (0, {MAX_STREAM_DEADLINE_SECONDS}], well "
                "under API Gateway's 15-minute limit for streamed integrations"
            )
        lam = raw["lambda"]
        if lam["architecture"] not in ("arm64", "x86_64"):
            raise ConfigError("lambda.architecture must be arm64 or x86_64")
        if "timeout_seconds" in lam:
            raise ConfigError(
                "lambda.timeout_seconds is derived from api.integration_timeout_seconds now; "
                "remove it (see the README's Resilience section)"
            )
        function_timeout = math.ceil(
            integration_timeout
            - resilience.response_margin_seconds
            + resilience.function_timeout_margin_seconds
        )
        tiers, default_tier = parse_tiers(raw, tuple(categories), api, preset_name)
        return RoutesConfig(
            preset=preset_name,
            categories=categories,
            default_category=default_category,
            classifier=ClassifierConfig(
                model_id=models["classifier_model_id"],
                max_output_tokens=int(raw["classifier"]["max_output_tokens"]),
                temperature=float(raw["classifier"]["temperature"]),
                unrecognised_output=unrecognised,
                prompt_intro=_text(
                    raw["classifier"], "prompt_intro", DEFAULT_CLASSIFIER_INTRO, "classifier"
                ),
            ),
            embedding=embedding,
            semantic_k=semantic_k,
            thresholds=thresholds,
            out_of_scope=out_of_scope,
            answering=AnsweringConfig(
                max_tokens=int(raw["answering"]["max_tokens"]),
                temperature=float(raw["answering"]["temperature"]),
                system_prompt=raw["answering"]["system_prompt"],
            ),
            api=ApiConfig(
                max_question_chars=int(api["max_question_chars"]),
                throttle_rate_limit=float(api["throttle_rate_limit"]),
                throttle_burst_limit=int(api["throttle_burst_limit"]),
                quota_requests_per_day=int(api["quota_requests_per_day"]),
                integration_timeout_seconds=integration_timeout,
                caller_category=caller_category,
                stream_deadline_seconds=stream_deadline,
            ),
            lambda_settings=LambdaConfig(
                runtime=lam["runtime"],
                architecture=lam["architecture"],
                memory_mb=int(lam["memory_mb"]),
                timeout_seconds=function_timeout,
                log_retention_days=int(lam["log_retention_days"]),
            ),
            inference_profile_regions={
                k: tuple(v) for k, v in raw.get("inference_profile_regions", {}).items()
            },
            prompt_router_targets={
                k: tuple(v) for k, v in raw.get("prompt_router_targets", {}).items()
            },
            tiers=tiers,
            default_tier=default_tier,
            resilience=resilience,
            response=parse_response(raw),
            prices=parse_prices(raw),
            cache=parse_cache(raw, tuple(categories)),
            source_path=source_path,
            raw=raw,
            prompts_sha256=prompts_sha256,
        )
    except KeyError as exc:
        raise ConfigError(f"routes configuration is missing the key {exc.args[0]!r}") from exc
    except (SettingsError, TargetSpecError, TopicBankError, CacheConfigError) as exc:
        raise ConfigError(str(exc)) from exc
