"""Score, explain, segment and recommend: one function per step, shared by the batch job and the API."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from spanishgas.i18n import Language
from spanishgas.retention.offers import (
    BLOCKING_FLAGS,
    Policy,
    ValueMatrix,
    best_actions,
    check_guardrail_arrays,
    check_guardrails,
    eligible,
    eligible_arrays,
    optimize,
    plan_summary,
    rules_plan,
    threshold_plan,
    timing,
    value_matrix,
    value_matrix_arrays,
)
from spanishgas.retention.reasons import Reason, reasons_for_row
from spanishgas.retention.why import FREE_ACTION_FEATURES, RULES, Decision, explain

if TYPE_CHECKING:
    from spanishgas.model.churn_model import ChurnModel
    from spanishgas.retention.segments import SegmentModel


# The monthly margin an offer protects: the trailing 12-month average (gold's recommendation_candidates
# uses the same column, so batch and online values agree).
EXPECTED_MARGIN_SOURCE = "margin_avg_12m"


def with_value_fields(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the value fields offers need to a frame of online features, as gold adds them to candidates."""
    out = frame.copy()
    out["expected_monthly_margin_eur"] = out[EXPECTED_MARGIN_SOURCE].astype("float64")
    out["expected_annual_margin_eur"] = out["expected_monthly_margin_eur"] * 12
    return out


def holdout_mask(customer_ids: Any, actions: Any, share: float, key: str) -> np.ndarray:
    """Which customers with an offer the plan keeps aside, not contacted: a random ``share`` of them,
    drawn from ``key`` (the scoring run), so realized uplift can be measured against them later."""
    offered = np.asarray(actions, dtype=object) != "no_offer"
    if share <= 0:
        return np.zeros(len(offered), dtype=bool)
    seed = int(hashlib.sha256(key.encode()).hexdigest()[:16], 16)
    draws = np.random.default_rng(seed).random(len(offered))
    return offered & (draws < share)


def score(model: ChurnModel, frame: pd.DataFrame, top_reasons: int = 3, lang: Language = "es") -> pd.DataFrame:
    """Calibrated probability, tier, decision and reason codes (in ``lang``) for each row of features."""
    return pd.DataFrame(score_matrix(model, model.matrix(frame), top_reasons, lang), index=frame.index)


def score_matrix(model: ChurnModel, x: np.ndarray, top_reasons: int = 3, lang: Language = "es") -> dict[str, Any]:
    """:func:`score` on a matrix of the model's features: the batch job and the API both end here."""
    p, contributions = model.explained_proba_matrix(x)
    reasons: list[list[Reason]] = [
        reasons_for_row(model.features, x[i], contributions[i], top_reasons, lang) for i in range(len(x))
    ]
    return {
        "churn_probability": p,
        "risk_tier": model.tiers(p),
        "above_threshold": p >= model.threshold,
        "reasons": reasons,
        "reason_count": np.array([len(r) for r in reasons], dtype=np.int64),
    }


def segment(segments: SegmentModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Segment id, name and archetype of each row (``segment`` stays the utility's residential / SME /
    corporate segment)."""
    x = frame[segments.features].to_numpy(dtype="float64", na_value=np.nan)
    return pd.DataFrame(segment_matrix(segments, x), index=frame.index)


def segment_matrix(segments: SegmentModel, x: np.ndarray) -> dict[str, Any]:
    """:func:`segment` on a matrix of the segment model's features."""
    ids = segments.assign_matrix(x)
    return {
        "segment_id": ids,
        "segment_name": [segments.names[int(i)] for i in ids],
        "segment_archetype": [segments.archetypes[int(i)] for i in ids],
    }


def recommend(
    scored: pd.DataFrame,
    policy: Policy,
    budget_eur: float | None = None,
    lang: Language = "es",
    explained: bool = True,
) -> tuple[pd.DataFrame, dict]:
    """Choose an action per customer (the optimizer within ``budget_eur``; without a budget each
    customer's best-value offer, as the API recommends), with timing, cost, expected margin impact and,
    when ``explained``, why (in ``lang``; a few seconds per 20,000 customers, so the analyst app's live
    budget leaves it out); enforce the guardrails; compare the plan with the rules-only policy and
    "everyone above the threshold"."""
    values = value_matrix(scored, policy)
    if budget_eur is None:
        plan = pd.Series(best_actions(eligible(scored), values), index=scored.index, name="action")
    else:
        plan = optimize(scored, policy, budget_eur, values)
    out = apply_plan(scored, policy, plan, values)
    summary = {
        "plan": plan_summary(scored, plan, policy, values),
        "rules_only": plan_summary(scored, rules_plan(scored, policy, values), policy, values),
        "everyone_above_threshold": plan_summary(scored, threshold_plan(scored, policy), policy, values),
        "budget_eur": budget_eur,
    }
    if not explained:
        return out, summary
    decisions = explain(
        plan.to_numpy(), values, policy, scored["churn_probability"].to_numpy(dtype=float),
        scored["reason_count"].to_numpy(), scored["expected_monthly_margin_eur"].to_numpy(dtype=float),
        {c: scored[c].to_numpy() for c in BLOCKING_FLAGS if c in scored}, _context(scored), budget_eur,
    )  # fmt: skip
    out = out.assign(decision=decisions, **explanation_columns(decisions, lang))
    summary["decided_by"] = {rule: int(sum(d.rule == rule for d in decisions)) for rule in RULES}
    return out, summary


def _context(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The columns the no-cost suggestions look at (those the frame has)."""
    return {c: frame[c].to_numpy(dtype=float) for c in FREE_ACTION_FEATURES if c in frame}


def explanation_columns(decisions: list[Decision], lang: Language) -> dict[str, list[Any]]:
    """The batch table's explanation columns: the deciding rule, why, further notes and no-cost actions
    (lists as JSON), in ``lang``."""
    rendered = [d.rendered(lang) for d in decisions]
    return {
        "decision_rule": [r["rule"] for r in rendered],
        # the action the decision is about (for no offer: the best one considered) and its figures
        "considered_action": [d.action for d in decisions],
        "considered_cost_eur": [d.figures["action_cost_eur"] for d in decisions],
        "considered_retained_eur": [d.figures["expected_retained_margin_eur"] for d in decisions],
        "why": [r["why"] for r in rendered],
        "why_also_json": [json.dumps(r["also"], ensure_ascii=False) for r in rendered],
        "free_actions_json": [json.dumps(r["free_actions"], ensure_ascii=False) for r in rendered],
    }


def recommend_best_arrays(
    probability: np.ndarray,
    tiers: Any,
    monthly_margin: np.ndarray,
    archetypes: Any,
    reason_count: np.ndarray,
    flags: dict[str, Any],
    context: dict[str, np.ndarray],
    policy: Policy,
) -> tuple[dict[str, Any], list[Decision]]:
    """Each customer's best-value action on arrays (the API's recommendation, and the batch plan's when
    its budget does not bind): action, timing, cost, expected margin impact, monthly loss and why, with
    the guardrails enforced."""
    values = value_matrix_arrays(probability, monthly_margin, archetypes, policy)
    plan = best_actions(eligible_arrays(reason_count, monthly_margin, flags), values)
    months = context.get("months_to_renewal", np.full(len(plan), np.nan))
    details = plan_details(plan, tiers, months, probability, monthly_margin, values, policy)
    check_guardrail_arrays(plan, probability, details["expected_margin_impact_eur"], reason_count, flags)
    decisions = explain(plan, values, policy, probability, reason_count, monthly_margin, flags, context)
    return details, decisions


def plan_details(
    plan: np.ndarray,
    tiers: Any,
    months_to_renewal: np.ndarray,
    probability: np.ndarray,
    monthly_margin: np.ndarray,
    values: ValueMatrix,
    policy: Policy,
) -> dict[str, Any]:
    """Each customer's planned action with its timing, cost, expected margin impact and the expected
    monthly loss if nothing is done."""
    months = np.nan_to_num(np.asarray(months_to_renewal, dtype=float), nan=99.0)
    margin = np.nan_to_num(np.asarray(monthly_margin, dtype=float), nan=0.0)
    return {
        "action": np.asarray(plan, dtype=object),
        "offer_cost_eur": values.pick(values.cost, plan),
        "expected_margin_impact_eur": values.pick(values.value, plan),
        "timing_window": [
            "none" if a == "no_offer" else timing(t, float(m), policy)
            for a, t, m in zip(plan, tiers, months, strict=True)
        ],
        "expected_monthly_loss_eur": np.asarray(probability, dtype=float) * np.maximum(margin, 0.0),
    }


def apply_plan(scored: pd.DataFrame, policy: Policy, plan: pd.Series, values: ValueMatrix) -> pd.DataFrame:
    """``scored`` with each customer's planned action (:func:`plan_details`); refuses a plan that breaks
    a guardrail."""
    details = plan_details(
        plan.to_numpy(),
        scored["risk_tier"].to_numpy(),
        scored["months_to_renewal"].to_numpy(dtype=float),
        scored["churn_probability"].to_numpy(dtype=float),
        scored["expected_monthly_margin_eur"].to_numpy(dtype=float),
        values,
        policy,
    )
    out = scored.assign(**details)
    check_guardrails(out)
    return out


def reasons_json(reasons: list[Reason]) -> str:
    """Reason codes as JSON for a table column (with each phrase's message key)."""
    return json.dumps(
        [
            {"phrase": r.phrase, "feature": r.feature, "value": r.value, "contribution": r.contribution}
            | ({"message": r.message.key} if r.message else {})
            for r in reasons
        ],
        ensure_ascii=False,
    )


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
        "expected_monthly_margin_eur",
        "reason_count",
        "decision_rule",
        "considered_action",
        "considered_cost_eur",
        "considered_retained_eur",
        "why",
        "why_also_json",
        "free_actions_json",
    ]
    table = recommendations[cols].copy()
    if "segment" in recommendations:  # the utility's residential / SME / corporate segment
        table.insert(3, "customer_segment", recommendations["segment"].to_numpy())
    table["top_reason"] = [r[0].phrase if r else "" for r in recommendations["reasons"]]
    table["reasons_json"] = [reasons_json(r) for r in recommendations["reasons"]]
    for key, value in meta.items():
        table[key] = value
    return table.reset_index(drop=True)
