"""Observed churn by as-of month beside the rate the serving model expects for the same customers, over
every month whose 90-day label has matured. The batch job publishes it with each scoring run, so the
analyst app's overview reads a small table instead of scoring the whole history on first view."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from spanishgas.model.churn_model import ChurnModel
    from spanishgas.settings import Settings

HISTORY_TABLE = "churn_history"
TRAINING_TABLE = "churn_training_dataset"


def labelled_snapshots(settings: Settings, gold_run: str, features: list[str]) -> pd.DataFrame:
    """Every as-of month's customers whose label has matured (gold's training dataset), with ``features``."""
    from spanishgas.lake_reader import LakeReader

    lake = LakeReader.from_settings(settings)
    present = set(lake.column_names("gold", gold_run, TRAINING_TABLE))
    columns = ["customer_id", "as_of_date", "label", *[f for f in features if f in present]]
    return lake.read_table("gold", gold_run, TRAINING_TABLE, columns).to_pandas()


def churn_by_month(labelled: pd.DataFrame, model: ChurnModel) -> pd.DataFrame:
    """Observed 90-day churn rate per as-of month beside the rate the model expects for the same
    customers (its mean calibrated probability): where the two part, calibration is slipping."""
    expected = model.predict_proba(labelled)
    frame = pd.DataFrame(
        {"month": pd.to_datetime(labelled["as_of_date"]), "observed": labelled["label"], "expected": expected}
    )
    out = frame.groupby("month").agg(
        customers=("observed", "size"), observed_rate=("observed", "mean"), expected_rate=("expected", "mean")
    )
    return out.reset_index()


def churn_history(settings: Settings, gold_run: str, model: ChurnModel) -> pd.DataFrame:
    """:func:`churn_by_month` on every matured month of a gold run."""
    return churn_by_month(labelled_snapshots(settings, gold_run, model.features), model)
