"""Reason codes, offers, guardrails, the budget optimizer and segments, on hand-built frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.unit


def _customers(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = np.clip(rng.beta(0.6, 6, n) * 1.5, 0, 1)
    tiers = np.select([p >= 0.25, p >= 0.12, p >= 0.05], ["critical", "high", "medium"], "low")
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "churn_probability": p,
            "risk_tier": tiers,
            "above_threshold": p >= 0.03,
            "reason_count": rng.integers(0, 4, n),
            "expected_monthly_margin_eur": rng.gamma(2.0, 25.0, n) - 5,
            "segment_archetype": rng.choice(["default", "price_sensitive"], n),
            "months_to_renewal": rng.uniform(-2, 12, n),
        }
    )


def test_reasons_are_the_positive_contributions_largest_first_with_their_values() -> None:
    from spanishgas.retention.reasons import reasons_for_row

    names = ["complaints_90d", "months_to_renewal", "tenure_months", "price_vs_segment_last"]
    values = np.array([2.0, 0.7, 40.0, 0.18])
    contributions = np.array([0.8, 1.1, -0.3, 0.2])
    reasons = reasons_for_row(names, values, contributions, top=3)
    assert [r.feature for r in reasons] == ["months_to_renewal", "complaints_90d", "price_vs_segment_last"]
    assert all(r.contribution > 0 for r in reasons)
    assert reasons[0].phrase == "contract renews in 3 weeks"
    assert reasons[1].phrase == "complained 2 times in the last 90 days"
    assert reasons[2].phrase == "pays 18% more than similar customers"
    assert [r.value for r in reasons] == [0.7, 2.0, 0.18]
    # nothing pushes risk up: no reasons
    assert reasons_for_row(names, values, -np.abs(contributions)) == []


def test_phrases_follow_the_sign_of_the_value() -> None:
    from spanishgas.retention.reasons import phrase

    assert phrase("months_to_renewal", -3.2) == "contract expired 3 months ago without renewal"
    assert phrase("price_trend_3m", -0.05) == "price fell 5% in the last 3 months"
    assert phrase("complaints_180d", 1) == "complained once in the last 180 days"
    # a missing value, or an internal figure, is never a reason
    assert phrase("complaints_180d", float("nan")) is None and phrase("margin_avg_12m", 3.2) is None


def test_phrases_are_true_at_the_customers_value_or_absent() -> None:
    """The model can find that a flag left unset raises the risk; an agent cannot say "lives where rivals
    compete hard" to a customer who does not. Such features give no reason; the next one is used."""
    from spanishgas.retention.reasons import phrase, reasons_for_row

    assert phrase("is_high_competition_province", 1) == "lives where rival retailers compete hard"
    assert phrase("is_high_competition_province", 0) is None
    assert phrase("complaints_90d", 0) is None
    assert phrase("cancellation_intent_90d", 0) is None
    assert phrase("contacts_90d", 0) == "has not contacted us in the last 90 days"
    assert phrase("max_intent_severity_180d", 1) == "called about billing, prices or the renewal in the last 180 days"
    assert phrase("max_intent_severity_180d", 3) == "mentioned cancelling in the last 180 days"
    assert phrase("max_intent_severity_180d", 0) is None
    assert phrase("tenure_months", 120) == "customer for 10 years"
    assert phrase("tenure_months", 7) == "customer for 7 months"
    assert phrase("days_since_last_complaint", 12) == "complained 12 days ago"
    assert phrase("days_since_last_cancellation_intent", 170.4) == "mentioned cancelling 170 days ago"
    # 999 means no such contact in the year looked at: nothing to say of an unhappy contact that never
    # happened, but a customer who has not been in touch all year is something an agent can act on
    assert phrase("days_since_last_negative_contact", 999) is None
    assert phrase("days_since_last_contact", 999) == "has not contacted us in the last year"
    assert phrase("days_since_last_complaint", -3) is None  # a what-if value gold cannot produce
    assert phrase("negative_contacts_180d", 2) == "was unhappy 2 times when in touch in the last 180 days"
    names = ["is_high_competition_province", "complaints_90d", "months_to_renewal", "price_vs_segment_last"]
    reasons = reasons_for_row(names, np.array([0.0, 0.0, 0.7, 0.18]), np.array([0.9, 0.8, 0.5, 0.2]), top=2)
    assert [r.feature for r in reasons] == ["months_to_renewal", "price_vs_segment_last"]


def test_guardrails_refuse_bad_recommendations() -> None:
    from spanishgas.retention.offers import GuardrailViolation, check_guardrails

    good = pd.DataFrame(
        {
            "action": ["small_discount", "no_offer"],
            "churn_probability": [0.4, 0.01],
            "expected_margin_impact_eur": [3.0, 0.0],
            "reason_count": [2, 0],
            "is_churned": [False, True],
        }
    )
    check_guardrails(good)
    cases = {
        "negative expected margin": {"expected_margin_impact_eur": [-1.0, 0.0]},
        "no reason codes": {"reason_count": [0, 0]},
        "outside": {"churn_probability": [1.2, 0.01]},
        "is_churned": {"is_churned": [True, True]},
    }
    for needle, change in cases.items():
        with pytest.raises(GuardrailViolation, match=needle):
            check_guardrails(good.assign(**change))


def test_ineligible_customers_get_no_offer() -> None:
    from spanishgas.retention.offers import load_policy, optimize, rules_plan

    frame = _customers(400, 5)
    frame["churn_probability"] = 0.9
    frame["risk_tier"] = "critical"
    frame["reason_count"] = 2
    frame["expected_monthly_margin_eur"] = 200.0
    frame["is_churned"] = np.arange(400) % 4 == 0
    frame["is_regulated"] = np.arange(400) % 4 == 1
    for plan in (rules_plan(frame, load_policy()), optimize(frame, load_policy(), 1e9)):
        blocked = frame["is_churned"] | frame["is_regulated"]
        assert (plan[blocked] == "no_offer").all()
        assert (plan[~blocked] != "no_offer").all()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_optimizer_respects_the_budget_and_beats_the_rules(seed: int) -> None:
    from spanishgas.retention.offers import expected_values, load_policy, optimize, plan_summary, rules_plan

    policy = load_policy()
    frame = _customers(3000, seed)
    rules = plan_summary(frame, rules_plan(frame, policy), policy)
    for budget in (0.0, 500.0, rules["cost_eur"], 1e9):
        plan = optimize(frame, policy, budget)
        summary = plan_summary(frame, plan, policy)
        assert summary["cost_eur"] <= budget + 1e-6
        ev = expected_values(frame, policy)
        chosen_values = np.array([ev[(a, "value")].iat[i] for i, a in enumerate(plan)])
        assert (chosen_values[plan.to_numpy() != "no_offer"] > 0).all()
        if budget >= rules["cost_eur"]:
            assert summary["expected_value_eur"] >= rules["expected_value_eur"] - 1e-6
    assert plan_summary(frame, optimize(frame, policy, 0.0), policy)["customers_offered"] == 0


def test_recommend_carries_timing_costs_and_the_comparisons() -> None:
    from spanishgas.retention.offers import load_policy
    from spanishgas.retention.reasons import Reason
    from spanishgas.retention.scoring import recommend

    frame = _customers(500, 9)
    frame["reasons"] = [[Reason("x", "f", 1.0, 0.1)] * int(k) for k in frame["reason_count"]]
    out, summary = recommend(frame, load_policy(), budget_eur=2000.0)
    offered = out[out["action"] != "no_offer"]
    assert len(offered) > 0 and (offered["expected_margin_impact_eur"] > 0).all()
    assert (offered["timing_window"] != "none").all()
    near = offered[offered["months_to_renewal"] < 3]
    assert (near["timing_window"] == "immediate").all()
    assert summary["plan"]["cost_eur"] <= 2000.0
    assert set(summary) == {"plan", "rules_only", "everyone_above_threshold", "budget_eur", "decided_by"}
    assert sum(summary["decided_by"].values()) == len(out)
    assert (out.loc[out["action"] != "no_offer", "decision_rule"] == "offer_pays").all()


def test_segments_are_reproducible_and_named() -> None:
    from spanishgas.retention.segments import SEGMENT_FEATURES, fit_segments

    rng = np.random.default_rng(0)
    n = 1500
    frame = pd.DataFrame({f: rng.normal(size=n) for f in SEGMENT_FEATURES})
    frame.loc[: n // 3, "margin_avg_12m"] += 6  # a high-margin group
    frame.loc[n // 3 : 2 * n // 3, "contacts_365d"] += 6  # frequent callers
    a, b = fit_segments(frame, seed=42), fit_segments(frame, seed=42)
    assert (a.assign(frame) == b.assign(frame)).all() and a.names == b.names
    assert len(a.names) >= 3
    assert any("high-margin" in name for name in a.names.values())
    assert any("frequent callers" in name for name in a.names.values())
    assert a.profiles["customers"].sum() == n
    # The numpy assignment the API uses is scikit-learn's nearest centroid, missing values at the medians.
    holes = frame.copy()
    holes.iloc[::7, 2] = np.nan
    filled = holes[a.features].astype(float).fillna(a.medians).to_numpy()
    assert (a.assign(holes) == a.kmeans.predict(a.scaler.transform(filled))).all()


def test_the_api_recommendation_on_arrays_equals_the_batch_plan_when_the_budget_does_not_bind() -> None:
    """The API recommends one customer from arrays; the batch job plans the book from a frame: with a
    budget that does not bind (or none), the same action, timing, value and why for every customer."""
    from spanishgas.retention.offers import load_policy
    from spanishgas.retention.reasons import Reason
    from spanishgas.retention.scoring import recommend, recommend_best_arrays

    policy = load_policy()
    frame = _customers(400, 5)
    frame["reasons"] = [[Reason("x", "f", 1.0, 0.1)] * int(k) for k in frame["reason_count"]]
    unbounded, _ = recommend(frame, policy, budget_eur=None, lang="en")
    generous, summary = recommend(frame, policy, budget_eur=1e12, lang="en")
    assert summary["plan"]["cost_eur"] < 1e12  # the budget does not bind
    assert (generous["action"].to_numpy() == unbounded["action"].to_numpy()).all()
    assert (unbounded["action"] != "no_offer").any() and (unbounded["action"] == "no_offer").any()
    for i in range(400):
        row = frame.iloc[[i]]
        context = {c: row[c].to_numpy(dtype=float) for c in ("months_to_renewal",)}
        one, decisions = recommend_best_arrays(
            row["churn_probability"].to_numpy(), row["risk_tier"].to_numpy(),
            row["expected_monthly_margin_eur"].to_numpy(), row["segment_archetype"].to_numpy(),
            row["reason_count"].to_numpy(), {}, context, policy,
        )  # fmt: skip
        assert one["action"][0] == generous["action"].iloc[i]
        assert one["timing_window"][0] == generous["timing_window"].iloc[i]
        assert one["expected_margin_impact_eur"][0] == pytest.approx(generous["expected_margin_impact_eur"].iloc[i])
        assert decisions[0].rendered("en")["why"] == generous["why"].iloc[i]
