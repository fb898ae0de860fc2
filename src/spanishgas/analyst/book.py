"""The customer book as the analyst app reads it: the newest published scoring run, each scored customer's
attributes at the scored snapshot (province, renewal, channel, margin, consumption), and the run ids that
key every cache, so a new gold run, scoring run or model version shows at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from spanishgas.settings import Settings

# Gold's channel flags, in the utility's words.
CHANNELS = {
    "is_channel_in_person": "in person",
    "is_channel_office": "office",
    "is_channel_telemarketing": "telemarketing",
    "is_channel_comparison": "comparison site",
    "is_channel_own_web": "own website",
    "is_channel_unknown": "unknown",
}
# Renewal windows by months to renewal (upper bounds), as the retention team plans campaigns.
RENEWAL_WINDOWS = ((0.0, "expired"), (3.0, "0-3 months"), (6.0, "3-6 months"), (12.0, "6-12 months"))
LATER_RENEWAL = "12+ months"
TIER_ORDER = ("critical", "high", "medium", "low")
# What the book shows of a customer beside the scores (gold's recommendation candidates).
ATTRIBUTES = [
    "province_code",
    "months_to_renewal",
    "tenure_months",
    "expected_monthly_margin_eur",
    "elec_kwh_avg_12m",
    "gas_kwh_avg_12m",
    "is_dual_fuel",
    "price_tier1_last",
    "contacts_365d",
    "complaints_365d",
    "days_since_last_contact",
    *CHANNELS,
]


class NoScoresYet(LookupError):
    """Nothing published to show yet."""


@dataclass(frozen=True)
class RunKeys:
    """The ids of what the app shows; every cached read is keyed by them."""

    scores_run: str | None
    gold_run: str | None
    champion_version: str | None
    challenger_version: str | None
    monitoring_run: str | None


def run_keys(settings: Settings) -> RunKeys:
    """The newest published runs and the aliased model versions (cheap: markers and two registry calls)."""
    from spanishgas.lake_reader import LakeReader
    from spanishgas.model.registry import CHALLENGER, CHAMPION, alias_version
    from spanishgas.monitoring.job import MONITORING_LAYER
    from spanishgas.retention.job import SCORES_LAYER

    lake = LakeReader.from_settings(settings)

    def newest(layer: str) -> str | None:
        runs = lake.published_runs(layer)
        return runs[-1] if runs else None

    return RunKeys(
        scores_run=newest(SCORES_LAYER),
        gold_run=newest("gold"),
        champion_version=alias_version(settings, CHAMPION),
        challenger_version=alias_version(settings, CHALLENGER),
        monitoring_run=newest(MONITORING_LAYER),
    )


@dataclass
class Book:
    """One published scoring run with every scored customer's attributes."""

    run_id: str
    model_version: str
    gold_run: str
    as_of: date
    summary: dict[str, Any]
    customers: pd.DataFrame
    holdout_share: float = 0.0


def load_book(settings: Settings, scores_run: str | None) -> Book:
    """The scoring run ``scores_run`` (from :func:`run_keys`) joined with gold's candidates of its run."""
    if scores_run is None:
        raise NoScoresYet(
            "no published scores yet: run `spanishgas score` (or let the spanishgas_scoring DAG run) first"
        )
    from spanishgas.lake_reader import LakeReader
    from spanishgas.retention.job import SCORES_LAYER, SCORES_TABLE

    lake = LakeReader.from_settings(settings)
    manifest = lake.manifest(SCORES_LAYER, scores_run)
    scores = lake.read_table(SCORES_LAYER, scores_run, f"{SCORES_TABLE}.parquet").to_pandas()
    gold = lake.read_table("gold", manifest["gold_run_id"], "recommendation_candidates").to_pandas()
    present = [c for c in ATTRIBUTES if c in gold.columns and c not in scores.columns]
    customers = scores.merge(gold[["customer_id", *present]], on="customer_id", how="left")
    customers["renewal_window"] = renewal_windows(customers["months_to_renewal"])
    customers["sales_channel"] = channel_names(customers)
    customers["top_reasons"] = [reason_phrases(raw) for raw in customers["reasons_json"]]
    return Book(
        run_id=scores_run,
        model_version=str(manifest.get("model_version", "")),
        gold_run=str(manifest["gold_run_id"]),
        as_of=date.fromisoformat(str(manifest.get("feature_snapshot_date"))),
        summary=dict(manifest.get("summary") or {}),
        customers=customers,
        holdout_share=float(manifest.get("holdout_share", 0.0)),
    )


def renewal_windows(months: pd.Series) -> pd.Series:
    """Each customer's renewal window ("expired", "0-3 months", ... "12+ months"; missing: unknown)."""
    values = pd.to_numeric(months, errors="coerce").to_numpy(dtype=float)
    (_, expired), *later = RENEWAL_WINDOWS
    conditions = [np.isnan(values), values <= 0.0, *[values < bound for bound, _ in later]]
    labels = np.select(conditions, ["unknown", expired, *[label for _, label in later]], default=LATER_RENEWAL)
    return pd.Series(labels.astype(object), index=months.index)


def channel_names(customers: pd.DataFrame) -> pd.Series:
    """The sales channel each customer came through, from gold's one-hot flags."""
    names = pd.Series("unknown", index=customers.index, dtype=object)
    for column, name in CHANNELS.items():
        if column in customers:
            names[customers[column].fillna(0).to_numpy() > 0] = name
    return names


def reason_phrases(raw: Any, limit: int = 3) -> str:
    """A row's top reasons in words, joined for a table cell."""
    import json

    if not isinstance(raw, str) or not raw:
        return ""
    return "; ".join(str(r.get("phrase", "")) for r in json.loads(raw)[:limit])


def published_history(settings: Settings, scores_run: str) -> pd.DataFrame | None:
    """The observed vs expected churn by month published with a scoring run (None for runs published
    before the batch job kept it)."""
    from spanishgas.lake_reader import LakeReader
    from spanishgas.retention.history import HISTORY_TABLE
    from spanishgas.retention.job import SCORES_LAYER

    lake = LakeReader.from_settings(settings)
    if HISTORY_TABLE not in lake.manifest(SCORES_LAYER, scores_run).get("tables", []):
        return None
    return lake.read_table(SCORES_LAYER, scores_run, f"{HISTORY_TABLE}.parquet").to_pandas()


def latest_matured_labels(labelled: pd.DataFrame) -> pd.DataFrame:
    """The labels of the newest matured as-of month (customer_id, label)."""
    latest = labelled["as_of_date"].max()
    return labelled.loc[labelled["as_of_date"] == latest, ["customer_id", "label"]]
