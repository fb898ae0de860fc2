"""Delayed-label performance: earlier scoring runs whose label horizon has matured become cohorts.

A scoring run scores the customers of one gold snapshot (its ``feature_snapshot_date``). Once a later
delivery's labels cover that date plus the horizon, gold's ``churn_training_dataset`` holds who left
within the horizon, and the run's probabilities can be judged on what really happened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from spanishgas.model.metrics import expected_calibration_error

if TYPE_CHECKING:
    from spanishgas.monitoring.reference import ReferenceProfile
    from spanishgas.settings import MonitoringSettings

COHORT_COLUMNS = [
    "scoring_run_id",
    "model_version",
    "snapshot_date",
    "rows",
    "churners",
    "roc_auc",
    "pr_auc",
    "brier",
    "ece",
    "observed_churn_rate",
    "expected_churn_rate",
    "reference_pr_auc",
    "reference_ece",
    "pr_auc_drop",
    "pr_auc_noise",
    "ece_rise",
    "judged",
    "decayed",
    "rules",
]
TIER_COLUMNS = [
    "scoring_run_id",
    "model_version",
    "snapshot_date",
    "risk_tier",
    "rows",
    "observed_churn_rate",
    "expected_churn_rate",
]


def cohort_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Realized ROC-AUC, PR-AUC, Brier score, ECE (10 equal-count bins), observed and expected churn rate."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    both = 0 < y.sum() < len(y)
    return {
        "rows": len(y),
        "churners": int(y.sum()),
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "observed_churn_rate": float(y.mean()),
        "expected_churn_rate": float(p.mean()),
    }


def pr_auc_standard_error(pr_auc: float, churners: int) -> float:
    """Approximate standard error of a PR-AUC from ``churners`` positives (the binomial approximation
    sqrt(AP (1 - AP) / positives) that logit intervals for average precision start from)."""
    return float(np.sqrt(pr_auc * (1 - pr_auc) / churners)) if churners else float("inf")


def decay(
    figures: dict[str, float], reference: dict[str, Any], settings: MonitoringSettings
) -> tuple[bool, bool, list[str], dict[str, float]]:
    """Whether a cohort is judged (enough churners), has decayed, which rules it broke, and the figures.
    A PR-AUC drop counts only beyond ``decay_z`` standard errors of the cohort's PR-AUC: a monthly cohort
    of a small book has a few dozen churners, and its PR-AUC moves by a third from month to month."""
    drop = (reference["pr_auc"] - figures["pr_auc"]) / reference["pr_auc"] if reference["pr_auc"] else 0.0
    rise = figures["ece"] - reference["ece"]
    noise = settings.decay_z * pr_auc_standard_error(figures["pr_auc"], figures["churners"])
    compared = {
        "reference_pr_auc": reference["pr_auc"],
        "reference_ece": reference["ece"],
        "pr_auc_drop": float(drop),
        "pr_auc_noise": float(noise),
        "ece_rise": float(rise),
    }
    if figures["churners"] < settings.min_cohort_churners or np.isnan(figures["pr_auc"]):
        return False, False, [f"not judged: fewer than {settings.min_cohort_churners} churners"], compared
    broken = []
    if drop >= settings.decay_pr_auc_drop:
        if reference["pr_auc"] - figures["pr_auc"] > noise:
            broken.append(f"pr_auc_drop>={settings.decay_pr_auc_drop:g}")
        else:
            broken.append(f"not significant: pr_auc_drop>={settings.decay_pr_auc_drop:g} within {noise:.3f}")
    if rise >= settings.decay_ece_rise:
        broken.append(f"ece_rise>={settings.decay_ece_rise:g}")
    decayed = any(not b.startswith("not significant") for b in broken)
    return True, decayed, broken, compared


def cohort_rows(
    run: dict[str, Any],
    scores: pd.DataFrame,
    labels: pd.DataFrame,
    profile: ReferenceProfile | None,
    settings: MonitoringSettings,
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """One matured cohort: the run's scores joined with the labels of its snapshot date (None when the
    labels do not cover that date yet)."""
    snapshot = pd.Timestamp(run["feature_snapshot_date"]).date()
    matured = labels[labels["as_of_date"] == snapshot]
    if matured.empty:
        return None
    joined = scores[["customer_id", "churn_probability", "risk_tier"]].merge(
        matured[["customer_id", "label"]], on="customer_id", how="inner"
    )
    if joined.empty:
        return None
    y, p = joined["label"].to_numpy(), joined["churn_probability"].to_numpy(dtype=float)
    figures = cohort_metrics(y, p)
    key = {"scoring_run_id": run["run_id"], "model_version": str(run["model_version"]), "snapshot_date": snapshot}
    if profile is None:
        judged, decayed, broken = False, False, [f"not judged: no reference profile for v{key['model_version']}"]
        compared = dict.fromkeys(("reference_pr_auc", "reference_ece", "pr_auc_drop", "pr_auc_noise", "ece_rise"))
    else:
        judged, decayed, broken, compared = decay(figures, profile.test, settings)
    cohort = {**key, **figures, **compared, "judged": judged, "decayed": decayed, "rules": ", ".join(broken)}
    tiers = [
        {
            **key,
            "risk_tier": tier,
            "rows": len(g),
            "observed_churn_rate": float(g["label"].mean()),
            "expected_churn_rate": float(g["churn_probability"].mean()),
        }
        for tier, g in joined.groupby("risk_tier")
    ]
    return cohort, tiers


def cohort_tables(cohorts: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cohort table and the per-tier table, oldest snapshot first."""
    main = pd.DataFrame([c for c, _ in cohorts], columns=COHORT_COLUMNS)
    tiers = pd.DataFrame([t for _, ts in cohorts for t in ts], columns=TIER_COLUMNS)
    return main.sort_values(["snapshot_date", "scoring_run_id"], ignore_index=True), tiers
