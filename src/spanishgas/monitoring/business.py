"""The business view of each retention plan: offers, cost, expected retained margin, and, once the plan's
labels mature, the realized churn of the contacted customers against the plan's random holdout."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

BUSINESS_COLUMNS = [
    "scoring_run_id",
    "model_version",
    "snapshot_date",
    "budget_eur",
    "customers",
    "offers",
    "contacted",
    "holdout",
    "holdout_share",
    "offer_cost_eur",
    "expected_retained_margin_eur",
    "matured",
    "churn_rate_contacted",
    "churn_rate_holdout",
    "uplift",
    "uplift_standard_error",
]


def plan_row(run: dict[str, Any], scores: pd.DataFrame, labels: pd.DataFrame | None) -> dict[str, Any]:
    """One plan's figures. Cost and expected retained margin count the contacted customers only (the
    holdout is not contacted); uplift is the holdout's churn rate minus the contacted customers'."""
    offered = scores["action"].to_numpy(dtype=object) != "no_offer"
    holdout = scores["in_holdout"].to_numpy(dtype=bool) if "in_holdout" in scores else np.zeros(len(scores), bool)
    contacted = offered & ~holdout
    row: dict[str, Any] = {
        "scoring_run_id": run["run_id"],
        "model_version": str(run.get("model_version", "")),
        "snapshot_date": pd.Timestamp(run["feature_snapshot_date"]).date(),
        "budget_eur": (run.get("summary") or {}).get("budget_eur"),
        "customers": len(scores),
        "offers": int(offered.sum()),
        "contacted": int(contacted.sum()),
        "holdout": int(holdout.sum()),
        "holdout_share": float(run.get("holdout_share", 0.0)),
        "offer_cost_eur": float(scores.loc[contacted, "offer_cost_eur"].sum()),
        "expected_retained_margin_eur": float(scores.loc[contacted, "expected_margin_impact_eur"].sum()),
        "matured": False,
        "churn_rate_contacted": None,
        "churn_rate_holdout": None,
        "uplift": None,
        "uplift_standard_error": None,
    }
    if labels is None or labels.empty:
        return row
    joined = (
        scores[["customer_id"]]
        .assign(contacted=contacted, holdout=holdout)
        .merge(labels[["customer_id", "label"]], on="customer_id", how="inner")
    )
    row["matured"] = True
    treated, kept = joined.loc[joined["contacted"], "label"], joined.loc[joined["holdout"], "label"]
    if len(treated) and len(kept):
        a, b = float(treated.mean()), float(kept.mean())
        row.update(
            churn_rate_contacted=a,
            churn_rate_holdout=b,
            uplift=b - a,
            uplift_standard_error=float(np.sqrt(a * (1 - a) / len(treated) + b * (1 - b) / len(kept))),
        )
    return row
