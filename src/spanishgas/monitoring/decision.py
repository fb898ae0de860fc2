"""The retraining decision: data with its reasons, for the orchestration to act on."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spanishgas.settings import MonitoringSettings

# The reasons a retrain is asked for (also the label values of the pushed metric).
AGE, FEATURE_DRIFT, PREDICTION_DRIFT, DECAY = "model_age", "feature_drift", "prediction_drift", "performance_decay"
REASONS = (AGE, FEATURE_DRIFT, PREDICTION_DRIFT, DECAY)


@dataclass(frozen=True)
class DecisionInputs:
    """What the decision reads, each already measured."""

    model_version: str
    model_age_days: float
    drifted_importance_share: float  # share of the model's importance at alert-level drift
    alert_features: list[str]
    prediction_drift_level: str
    prediction_rules: str
    decayed_cohorts: list[str]  # snapshot dates of judged cohorts that decayed
    latest_cohort_decayed: bool


@dataclass
class RetrainingDecision:
    """Retrain or not, why, and the figures behind each reason."""

    retrain: bool
    reasons: list[str]
    explanations: list[str]
    model_version: str
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (stored with the monitoring run, read by the DAGs)."""
        return asdict(self)


def decide(inputs: DecisionInputs, settings: MonitoringSettings) -> RetrainingDecision:
    """Ask for a retrain when the model is older than the schedule, alert-level feature drift carries
    enough of its importance, the churn score drifts at alert level, or the latest matured cohort decayed."""
    reasons, explanations = [], []
    if inputs.model_age_days > settings.retrain_after_days:
        reasons.append(AGE)
        explanations.append(
            f"model v{inputs.model_version} is {inputs.model_age_days:.0f} days old "
            f"(schedule: {settings.retrain_after_days})"
        )
    if inputs.drifted_importance_share >= settings.drift_importance_share:
        reasons.append(FEATURE_DRIFT)
        explanations.append(
            f"features at alert-level drift carry {inputs.drifted_importance_share:.0%} of the model's importance "
            f"(at least {settings.drift_importance_share:.0%}): {', '.join(inputs.alert_features)}"
        )
    if inputs.prediction_drift_level == "alert":
        reasons.append(PREDICTION_DRIFT)
        explanations.append(f"the churn score drifted at alert level ({inputs.prediction_rules})")
    if inputs.latest_cohort_decayed:
        reasons.append(DECAY)
        explanations.append(f"the latest matured cohort decayed (decayed cohorts: {', '.join(inputs.decayed_cohorts)})")
    if not reasons:
        explanations.append(f"model v{inputs.model_version} holds: no rule asks for a retrain")
    return RetrainingDecision(
        retrain=bool(reasons),
        reasons=reasons,
        explanations=explanations,
        model_version=inputs.model_version,
        figures=asdict(inputs),
    )
