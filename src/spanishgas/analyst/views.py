"""What the analyst app's book pages compute: the morning overview, the at-risk list and its filters, the
retention plan against its alternatives, and the segments in the business's words. Pure functions of the
book, so the pages only lay them out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from spanishgas.analyst.book import TIER_ORDER, Book
from spanishgas.retention.story import AT_RISK_TIERS

if TYPE_CHECKING:
    from spanishgas.model.churn_model import ChurnModel
    from spanishgas.retention.offers import Policy
    from spanishgas.retention.segments import SegmentModel

# The at-risk list's columns, in the order the call-center campaign reads them.
LIST_COLUMNS = [
    "customer_id",
    "churn_probability",
    "risk_tier",
    "customer_segment",
    "segment_name",
    "province_code",
    "renewal_window",
    "sales_channel",
    "expected_monthly_margin_eur",
    "expected_monthly_loss_eur",
    "action",
    "timing_window",
    "in_holdout",
    "top_reasons",
]
# Offered customers the scoring run keeps aside, not contacted, to measure the offers' real uplift.
HOLDOUT = "in_holdout"
SORTS = {"churn probability": "churn_probability", "margin at risk": "expected_monthly_loss_eur"}


def overview(book: Book) -> dict[str, Any]:
    """The morning figures: the book, who is at risk, what it may cost and what the plan keeps."""
    c = book.customers
    plan = book.summary.get("plan") or {}
    return {
        "active_customers": len(c),
        "at_risk_customers": int(c["risk_tier"].isin(AT_RISK_TIERS).sum()),
        "by_tier": {t: int((c["risk_tier"] == t).sum()) for t in TIER_ORDER},
        "expected_churners": float(c["churn_probability"].sum()),
        "monthly_margin_at_risk_eur": float(c["expected_monthly_loss_eur"].sum()),
        "customers_offered": int(plan.get("customers_offered", 0)),
        "plan_cost_eur": float(plan.get("cost_eur", 0.0)),
        "plan_expected_retained_margin_eur": float(plan.get("expected_retained_margin_eur", 0.0)),
        "budget_eur": book.summary.get("budget_eur"),
    }


@dataclass(frozen=True)
class ListFilters:
    """The at-risk list's filters; an empty choice keeps everyone."""

    tiers: tuple[str, ...] = AT_RISK_TIERS
    segments: tuple[str, ...] = ()
    provinces: tuple[int, ...] = ()
    renewal_windows: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    sort_by: str = "churn probability"


def filter_choices(book: Book) -> dict[str, list[Any]]:
    """The values each filter offers, from the book itself."""
    c = book.customers
    return {
        "tiers": [t for t in TIER_ORDER if (c["risk_tier"] == t).any()],
        "segments": sorted(c["segment_name"].dropna().unique().tolist()),
        "provinces": sorted(int(p) for p in c["province_code"].dropna().unique()),
        "renewal_windows": [w for w in _window_order() if (c["renewal_window"] == w).any()],
        "channels": sorted(c["sales_channel"].dropna().unique().tolist()),
    }


def _window_order() -> list[str]:
    from spanishgas.analyst.book import LATER_RENEWAL, RENEWAL_WINDOWS

    return [label for _, label in RENEWAL_WINDOWS] + [LATER_RENEWAL, "unknown"]


def at_risk_list(book: Book, filters: ListFilters) -> pd.DataFrame:
    """The customers the filters keep, sorted (highest first), with their top reasons in words."""
    c = book.customers
    keep = np.ones(len(c), dtype=bool)
    for column, chosen in (
        ("risk_tier", filters.tiers),
        ("segment_name", filters.segments),
        ("province_code", filters.provinces),
        ("renewal_window", filters.renewal_windows),
        ("sales_channel", filters.channels),
    ):
        if chosen:
            keep &= c[column].isin(list(chosen)).to_numpy()
    columns = [col for col in LIST_COLUMNS if col in c]
    ordered = c.loc[keep, columns].sort_values(SORTS[filters.sort_by], ascending=False, kind="stable")
    return ordered.reset_index(drop=True)


def campaign_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows the call center may call: the held-out customers are left out (contacting them would
    spoil the uplift measurement)."""
    if HOLDOUT not in rows:
        return rows
    return rows[~rows[HOLDOUT].fillna(False).astype(bool).to_numpy()]


def campaign_csv(rows: pd.DataFrame) -> bytes:
    """The filtered list as the call-center campaign tool imports it (UTF-8 CSV, one row a customer to
    call): :func:`campaign_rows`, without the holdout flag."""
    return campaign_rows(rows).drop(columns=[HOLDOUT], errors="ignore").to_csv(index=False).encode("utf-8")


def plan_inputs(book: Book, model: ChurnModel, segments: SegmentModel) -> pd.DataFrame:
    """The book in the shape the retention optimizer reads (what the scoring job handed it), rebuilt from
    the published scores without scoring anyone again."""
    c = book.customers
    archetypes = {int(k): v for k, v in segments.archetypes.items()}
    return c.assign(
        above_threshold=c["churn_probability"].to_numpy(dtype=float) >= float(model.threshold),
        segment_archetype=[archetypes.get(int(s), "") for s in c["segment_id"]],
    )


@dataclass
class PlanComparison:
    """A plan for one budget beside the rules-only policy and "offer everyone above the threshold"."""

    budget_eur: float | None
    plans: dict[str, dict[str, Any]]
    by_segment_action: pd.DataFrame
    planned: pd.DataFrame
    holdout_customers: int = 0
    notes: list[str] = field(default_factory=list)


def compare_plans(
    frame: pd.DataFrame, policy: Policy, budget_eur: float | None, holdout_share: float, run_id: str
) -> PlanComparison:
    """Rerun the optimizer for ``budget_eur`` (None: every offer that pays for itself) and compare; the
    plan's holdout follows the scoring run ``run_id``'s (:func:`plan_holdout`)."""
    from spanishgas.retention.scoring import recommend

    planned, summary = recommend(frame, policy, budget_eur, explained=False)
    planned = planned.assign(**{HOLDOUT: plan_holdout(planned, frame, holdout_share, run_id)})
    offered = planned[planned["action"] != "no_offer"]
    by = (
        offered.assign(value=offered["expected_margin_impact_eur"])
        .groupby(["segment_name", "action"], as_index=False)
        .agg(customers=("customer_id", "size"), cost_eur=("offer_cost_eur", "sum"), expected_value_eur=("value", "sum"))
        .sort_values("expected_value_eur", ascending=False)
    )
    plans = {
        "this plan": summary["plan"],
        "rules only": summary["rules_only"],
        "everyone above the threshold": summary["everyone_above_threshold"],
    }
    notes = []
    if not len(offered):
        notes.append(
            "no offer pays for itself at these margins: every action's expected retained margin is below its cost"
        )
    return PlanComparison(budget_eur, plans, by, planned, int(offered[HOLDOUT].sum()), notes)


def plan_holdout(planned: pd.DataFrame, published: pd.DataFrame, share: float, run_id: str) -> np.ndarray:
    """Which of a live plan's offers are kept aside: the scoring run's held-out customers stay aside when
    the plan still offers them something; an offer the published plan did not make is drawn at the run's
    share with the run's key, as the scoring job draws (``holdout_mask``)."""
    from spanishgas.retention.scoring import holdout_mask

    offered = planned["action"].to_numpy(dtype=object) != "no_offer"
    drawn = holdout_mask(planned["customer_id"], planned["action"], share, run_id)
    if HOLDOUT not in published:
        return drawn
    by_customer = published.set_index("customer_id")
    was_offered = planned["customer_id"].map(by_customer["action"] != "no_offer").fillna(False).to_numpy(bool)
    was_held = planned["customer_id"].map(by_customer[HOLDOUT].astype(bool)).fillna(False).to_numpy(bool)
    return offered & np.where(was_offered, was_held, drawn)


def plan_csv(comparison: PlanComparison) -> bytes:
    """The plan's offers to make as a CSV (customer, action, timing, cost, expected value): the held-out
    customers are left out."""
    columns = ["customer_id", "risk_tier", "segment_name", "action", "timing_window", "offer_cost_eur"]
    planned = comparison.planned
    made = (planned["action"] != "no_offer") & ~planned[HOLDOUT].astype(bool)
    return planned.loc[made, [*columns, "expected_margin_impact_eur"]].to_csv(index=False).encode("utf-8")


# Segment profile: (column in the book, how it is summarized, the label the business uses)
PROFILE = (
    ("churn_probability", "mean", "expected churn rate (90 days)"),
    ("expected_monthly_margin_eur", "mean", "monthly margin (EUR)"),
    ("elec_kwh_avg_12m", "mean", "electricity (kWh a month)"),
    ("gas_kwh_avg_12m", "mean", "gas (kWh a month)"),
    ("is_dual_fuel", "mean", "dual-fuel share"),
    ("tenure_months", "median", "tenure (months)"),
    ("contacts_365d", "mean", "contacts a year"),
    ("complaints_365d", "mean", "complaints a year"),
)


def segment_profiles(book: Book, observed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each segment's size and profile (and its observed churn rate at the latest matured month when
    ``observed`` gives customer_id and label)."""
    c = book.customers
    grouped = c.groupby("segment_name")
    out = pd.DataFrame({"customers": grouped.size()})
    out["share of book"] = out["customers"] / len(c)
    for column, how, label in PROFILE:
        if column in c:
            out[label] = grouped[column].agg(how)
    if observed is not None and len(observed):
        joined = c[["customer_id", "segment_name"]].merge(observed, on="customer_id")
        out["observed churn rate (latest matured month)"] = joined.groupby("segment_name")["label"].mean()
    out["renewing within 3 months"] = grouped["renewal_window"].agg(
        lambda s: float(s.isin(["expired", "0-3 months"]).mean())
    )
    out["main channel"] = grouped["sales_channel"].agg(lambda s: s.value_counts().index[0])
    return out.sort_values("customers", ascending=False)


def segment_differences(profiles: pd.DataFrame, book: Book, top: int = 3) -> dict[str, list[str]]:
    """How each segment differs from the whole book: its measures furthest from the book's, in words."""
    c = book.customers
    words: dict[str, list[str]] = {}
    for segment, row in profiles.iterrows():
        ratios = []
        for column, how, label in PROFILE:
            if column not in c or label not in row:
                continue
            book_value = float(c[column].agg(how))
            if book_value and np.isfinite(row[label]):
                ratios.append(
                    (abs(np.log(max(float(row[label]), 1e-9) / book_value)), label, float(row[label]) / book_value)
                )
        ratios.sort(reverse=True)
        words[str(segment)] = [f"{label}: {ratio:.1f}x the book's" for _, label, ratio in ratios[:top]]
    return words
