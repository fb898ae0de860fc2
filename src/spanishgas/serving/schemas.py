"""What the scoring API accepts and answers (Pydantic v2 models; they are also the OpenAPI schema)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from spanishgas.i18n import Language

RiskTier = Literal["low", "medium", "high", "critical"]
DecisionRule = Literal["blocked_flag", "no_reasons", "no_margin", "no_offer_pays", "budget_exhausted", "offer_pays"]
# Customer ids as the utility delivers them (C + digits); anything id-like is accepted, nothing else.
CUSTOMER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$"
# No feature (euros, kWh, counts, ratios, months) comes near this; it keeps every value finite in float32.
FEATURE_VALUE_BOUND = 1e15
CustomerId = Annotated[str, Field(pattern=CUSTOMER_ID_PATTERN, examples=["C00042"])]


class ReasonCode(BaseModel):
    """A feature that pushes this customer's churn risk up, in words an agent can say."""

    phrase: str = Field(examples=["contract renews in 3 weeks"])
    feature: str = Field(examples=["months_to_renewal"])
    value: float | None = Field(description="the customer's value of the feature")
    contribution: float = Field(description="SHAP contribution to the log-odds of churning (positive: more risk)")


class Segment(BaseModel):
    """Where the customer sits: the retention segment (k-means) and the utility's own segment."""

    id: int
    name: str = Field(examples=["high-margin, near renewal"])
    archetype: str = Field(description="which retention effects apply (docs/retention.md)")
    customer_segment: str | None = Field(default=None, description="residential / SME / corporate segment")


WHY_EXAMPLE = "no offer pays for itself: the best, a service call, costs 6.00 EUR and is expected to keep 1.40 EUR"


class Recommendation(BaseModel):
    """The retention action with the best expected value for this customer (what the batch plan chooses
    when its budget does not bind), why, and what the agent may still do at no cost. The euro figures are
    internal: for the agent, not for the customer."""

    action: str = Field(examples=["medium_discount"])
    timing: str = Field(description="when to act: immediate, 30-60 days, 60-90 days, or none")
    offer_cost_eur: float
    expected_margin_impact_eur: float = Field(description="expected retained margin minus the offer's cost")
    expected_monthly_loss_eur: float = Field(description="churn probability x monthly margin at risk")
    rule: DecisionRule = Field(description="the rule or guardrail that decided (docs/retention.md)")
    why: str = Field(description="the decision with the figures behind it", examples=[WHY_EXAMPLE])
    also: list[str] = Field(default_factory=list, description="further notes: a capped cost, an urgent renewal")
    free_actions: list[str] = Field(
        description="what the agent may still do at no cost", examples=[["send the renewal terms"]]
    )


class AgentNotes(BaseModel):
    """Internal figures, for the agent's eyes only: never among the reasons given to the customer."""

    monthly_margin_eur: float = Field(description="the customer's expected monthly margin")
    margin_at_risk_eur: float = Field(description="churn probability x monthly margin")
    notes: list[str] = Field(description="the same figures in words")


class ModelRef(BaseModel):
    """The registered model version that produced a score."""

    name: str
    version: str


class ScoreResponse(BaseModel):
    """A customer's churn score, why, and what to do about it."""

    customer_id: str | None = Field(description="None for a what-if payload without a customer")
    churn_probability: float = Field(ge=0.0, le=1.0, description="calibrated probability of churning in 90 days")
    risk_tier: RiskTier
    above_threshold: bool = Field(description="at or above the model's decision threshold")
    segment: Segment
    reasons: list[ReasonCode] = Field(description="what to tell the customer, largest contribution first")
    recommendation: Recommendation
    agent_notes: AgentNotes
    language: Language = Field(description="language of every phrase (Accept-Language or ?lang=)")
    model: ModelRef
    feature_timestamp: datetime | None = Field(description="as-of time of the newest feature snapshot used")
    unknown_features: list[str] = Field(
        default_factory=list, description="model features with no value (the model treats them as unknown)"
    )
    what_if: bool = False


class WhatIfRequest(BaseModel):
    """Score changed features: a customer's current features with some values replaced, or a vector of
    its own when no customer is given (features it leaves out are unknown to the model)."""

    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerId | None = Field(default=None, description="start from this customer's online features")
    features: BaseModel | None = Field(default=None, description="feature values to use; null means unknown")

    def feature_values(self) -> dict[str, float | None]:
        """The feature values the caller set (left-out features are not in the result)."""
        return {} if self.features is None else self.features.model_dump(exclude_unset=True)


def what_if_request_model(feature_names: list[str]) -> type[WhatIfRequest]:
    """The what-if payload for these features: every name is an optional number, any other name is
    refused, so the OpenAPI document says exactly what is accepted."""

    def finite(cls: type, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("feature values must be finite numbers or null")
        return value

    # Bounded well inside float32, which XGBoost scores in: larger numbers would become infinities.
    bound = FEATURE_VALUE_BOUND
    fields: dict[str, Any] = {name: (float | None, Field(default=None, ge=-bound, le=bound)) for name in feature_names}
    features = create_model(
        "WhatIfFeatures",
        __config__=ConfigDict(extra="forbid"),
        __validators__={"finite": field_validator(*feature_names)(finite)},
        **fields,
    )
    return create_model(  # type: ignore[no-any-return]
        "WhatIfRequest",
        __base__=WhatIfRequest,
        features=(
            features | None,
            Field(
                default=None,
                description="feature values to use; null means unknown",
                examples=[{"months_to_renewal": 1.5}],
            ),
        ),
    )


class BatchRequest(BaseModel):
    """Several customers in one call."""

    model_config = ConfigDict(extra="forbid")

    customer_ids: list[CustomerId] = Field(min_length=1)


def batch_request_model(limit: int) -> type[BatchRequest]:
    """The batch payload with the configured maximum number of customers in its schema."""
    return create_model(  # type: ignore[no-any-return]
        "BatchRequest",
        __base__=BatchRequest,
        customer_ids=(list[CustomerId], Field(min_length=1, max_length=limit, description=f"1 to {limit} ids")),
    )


class BatchResponse(BaseModel):
    """Scores of the customers found, and the ids the store does not know."""

    scores: list[ScoreResponse]
    not_found: list[str]


class ModelInfo(BaseModel):
    """The model the service is serving right now."""

    name: str
    version: str
    alias: str
    run_id: str
    feature_service: str
    features: int
    threshold: float
    risk_tiers: dict[str, float]
    metrics: dict[str, float] = Field(description="the version's forward-test metrics from its MLflow run")
    segment_model_version: str
    loaded_at: datetime


class Health(BaseModel):
    """Liveness."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Readiness: the model is loaded and the online store answers."""

    ready: bool
    model_version: str | None
    online_store: str
    detail: str | None = None


class Problem(BaseModel):
    """An error, in words (never a stack trace)."""

    detail: str


class InvalidItem(BaseModel):
    """Where a request is invalid and why."""

    loc: list[str | int]
    msg: str
    type: str


class Invalid(BaseModel):
    """A request the API cannot accept (422): the same shape for malformed input and refused values."""

    detail: list[InvalidItem]
