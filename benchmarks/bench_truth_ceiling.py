"""How far can features go? Train XGBoost on the generator's own churn drivers (generated data only).

    SPANISHGAS_DATA_ROOT=data/full .venv/bin/python benchmarks/bench_truth_ceiling.py

The oracle's probability (``p_true``) uses latent factors and the horizon's contacts no feature can show;
the best possible (``p_observable``) is the oracle given what was observable at the as-of date. A model
trained on the drivers observed at the as-of date, on the same forward split as ``spanishgas train``,
shows how much of the gap between the churn model and the best possible better gold features could close.
Prints one JSON line.
"""

from __future__ import annotations

import json


def main() -> None:
    """Fit on the drivers and compare with the truth on the forward test rows."""
    import pandas as pd
    from xgboost import XGBClassifier

    from spanishgas.lake_reader import LakeReader
    from spanishgas.model.metrics import ranking_metrics
    from spanishgas.model.split import split_frame, time_split
    from spanishgas.settings import get_settings

    settings = get_settings()
    lake = LakeReader.from_settings(settings)
    gold = lake.latest_run("gold")
    rows = lake.read_table("gold", gold, "churn_training_dataset", columns=["customer_id", "as_of_date", "label"])
    rows = rows.to_pandas()
    truth = pd.read_parquet(f"{settings.truth_dir}/churn_probability_asof.parquet")
    drivers = [c for c in truth.columns if c.startswith("driver_")]
    for frame in (rows, truth):
        frame["as_of_date"] = pd.to_datetime(frame["as_of_date"]).dt.date
    best = "p_observable" if "p_observable" in truth.columns else "p_true"
    data = rows.merge(
        truth[["customer_id", "as_of_date", "p_true", best, *drivers]].loc[:, lambda f: ~f.columns.duplicated()],
        on=["customer_id", "as_of_date"],
    )
    data[drivers] = data[drivers].astype(float)
    split = time_split(
        sorted(data["as_of_date"].unique()), settings.label_horizon_days, settings.model.validation_dates
    )
    train, validation, test = split_frame(data, split)
    model = XGBClassifier(
        n_estimators=2000,
        max_depth=4,
        learning_rate=0.03,
        early_stopping_rounds=100,
        eval_metric="aucpr",
        n_jobs=2,
        random_state=settings.seed,
    )
    model.fit(train[drivers], train["label"], eval_set=[(validation[drivers], validation["label"])], verbose=False)
    y = test["label"].to_numpy()
    ceiling = ranking_metrics(y, model.predict_proba(test[drivers])[:, 1])
    truth_m = ranking_metrics(y, test[best].to_numpy())
    oracle_m = ranking_metrics(y, test["p_true"].to_numpy())
    print(
        json.dumps(
            {
                "gold_run": gold,
                "test_rows": len(test),
                "drivers": drivers,
                "drivers_model": {k: round(v, 4) for k, v in ceiling.items()},
                "truth": {k: round(v, 4) for k, v in truth_m.items()},
                "truth_column": best,
                "oracle": {k: round(v, 4) for k, v in oracle_m.items()},
                "drivers_vs_truth": {k: round(ceiling[k] / truth_m[k], 4) for k in ceiling},
            }
        )
    )


if __name__ == "__main__":
    main()
