"""The plan in a few lines, as the demo ends with it: how many customers are at risk, how many offers pay
for themselves and why the rest do not (the margin economics), and one customer where an offer pays."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from spanishgas.i18n import Message, Number, message

# The tiers the retention policy acts on: "at risk" in the plan, the demo and the analyst app.
AT_RISK_TIERS = ("critical", "high", "medium")


@dataclass(frozen=True)
class PlanStory:
    """What a published scoring table says about the plan."""

    scored: int
    at_risk: int
    offers: int
    decided_by: dict[str, int]
    economics: Message | None
    example_customer: str | None


def plan_story(scores: pd.DataFrame) -> PlanStory:
    """The story of a score table (:func:`spanishgas.retention.scoring.score_table`)."""
    at_risk = scores[scores["risk_tier"].isin(AT_RISK_TIERS)]
    offered = scores[scores["action"] != "no_offer"]
    unpaid = at_risk[at_risk["decision_rule"] == "no_offer_pays"]
    economics = None
    if len(unpaid):
        economics = message(
            "story.economics",
            count=len(unpaid),
            margin=Number(float(unpaid["expected_monthly_margin_eur"].median()), "eur"),
            cost=Number(float(unpaid["considered_cost_eur"].median()), "eur"),
            kept=Number(float(unpaid["considered_retained_eur"].median()), "eur"),
        )
    example = None
    if len(offered):
        contacted = offered[~offered["in_holdout"].astype(bool)] if "in_holdout" in offered else offered
        pool = contacted if len(contacted) else offered  # the example is one an agent would call
        example = str(pool.sort_values("expected_margin_impact_eur", ascending=False)["customer_id"].iloc[0])
    return PlanStory(
        scored=len(scores),
        at_risk=len(at_risk),
        offers=len(offered),
        decided_by={k: int(v) for k, v in scores["decision_rule"].value_counts().items()},
        economics=economics,
        example_customer=example,
    )
