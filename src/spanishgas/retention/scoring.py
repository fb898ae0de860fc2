"""Score, explain, segment and recommend: one function per step, shared by the batch job and the API."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from spanishgas.retention.offers import (
    Policy,
    check_guardrails,
    optimize,
    plan_summary,
    rules_plan,
    threshold_plan,
    timing,
    value_matrix,
)
from spanishgas.retention.reasons import Reason, reasons_for_row

if TYPE_CHECKING:
    from spanishgas.model.churn_model import ChurnModel
    from spanishgas.retention.segments import SegmentModel


def score(model: ChurnModel, frame: pd.DataFrame, top_reasons: int = 3) -> pd.DataFrame:
    """Calibrated probability, tier, decision and reason codes for each row of features."""
    p = model.predict_proba(frame)
    contributions, _ = model.contributions(frame)
    values = frame[model.features].to_numpy(dtype="float64", na_value=np.nan)
    reasons: list[list[Reason]] = [
        reasons_for_row(model.features, values[i], contributions[i], top_reasons) for i in range(len(frame))
    ]
    return pd.DataFrame(
        {
            "churn_probability": p,
            "risk_tier": model.tiers(p),
            "above_threshold": p >= model.threshold,
            "reasons": reasons,
            "reason_count": [len(r) for r in reasons],
        },
        index=frame.index,
    )


def segment(segments: SegmentModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Segment id, name and archetype of each row (``segment`` stays the utility's residential / SME /
    corporate segment)."""
    ids = segments.assign(frame)
    return pd.DataFrame(
        {
            "segment_id": ids,
            "segment_name": [segments.names[int(i)] for i in ids],
            "segment_archetype": [segments.archetypes[int(i)] for i in ids],
        },
        index=frame.index,
    )


def recommend(scored: pd.DataFrame, policy: Policy, budget_eur: float | None = None) -> tuple[pd.DataFrame, dict]:
    """Choose an action per customer (the optimizer within ``budget_eur``, else the rules), with timing,
    cost and expected margin impact; enforce the guardrails; compare the plan with the alternatives."""
    values = value_matrix(scored, policy)
    rules = rules_plan(scored, policy, values)
    plan = rules if budget_eur is None else optimize(scored, policy, budget_eur, values)
    out = scored.copy()
    out["action"] = plan.to_numpy()
    out["offer_cost_eur"] = values.pick(values.cost, plan)
    out["expected_margin_impact_eur"] = values.pick(values.value, plan)
    months = scored["months_to_renewal"].fillna(99).to_numpy()
    out["timing_window"] = [
        "none" if a == "no_offer" else timing(t, float(m), policy)
        for a, t, m in zip(plan, scored["risk_tier"], months, strict=True)
    ]
    out["expected_monthly_loss_eur"] = scored["churn_probability"] * scored["expected_monthly_margin_eur"].clip(lower=0)
    check_guardrails(out)
    summary = {
        "plan": plan_summary(scored, plan, policy, values),
        "rules_only": plan_summary(scored, rules, policy, values),
        "everyone_above_threshold": plan_summary(scored, threshold_plan(scored, policy), policy, values),
        "budget_eur": budget_eur,
    }
    return out, summary


def reasons_json(reasons: list[Reason]) -> str:
    """Reason codes as JSON for a table column."""
    return json.dumps([r.__dict__ for r in reasons])


def score_table(recommendations: pd.DataFrame, meta: dict[str, Any]) -> pd.DataFrame:
    """The published batch-score table: one row per customer, reasons as JSON."""
    cols = [
        "customer_id",
        "churn_probability",
        "risk_tier",
        "segment_id",
        "segment_name",
        "action",
        "timing_window",
        "offer_cost_eur",
        "expected_margin_impact_eur",
        "expected_monthly_loss_eur",
        "reason_count",
    ]
    table = recommendations[cols].copy()
    if "segment" in recommendations:  # the utility's residential / SME / corporate segment
        table.insert(3, "customer_segment", recommendations["segment"].to_numpy())
    table["top_reason"] = [r[0].phrase if r else "" for r in recommendations["reasons"]]
    table["reasons_json"] = [reasons_json(r) for r in recommendations["reasons"]]
    for key, value in meta.items():
        table[key] = value
    return table.reset_index(drop=True)
