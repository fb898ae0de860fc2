"""How far can features go? Fit the same learner with and without the generator's own drivers.

    SPANISHGAS_DATA_ROOT=data/full .venv/bin/python benchmarks/bench_truth_ceiling.py [--experiment E5]

Generated data only; run it with the settings ``spanishgas train`` used (profile, feature store). On the
forward split ``spanishgas train`` uses, one fixed XGBoost configuration is fitted twice: on the
experiment's features from the feature store, and on those plus the generator's true drivers at each
as-of date (the contact-window counts, intents and tones as the generator planted them, price rise,
premium, renewal and tenure). The second is what perfect text understanding and exact driver
definitions would give. Both are reported as fractions of the best possible (``p_observable``) and of
the oracle (``p_true``) on the test rows, with a paired bootstrap 95 % interval for the PR-AUC ratio: on
a month or three of churners the ratio's noise is wide. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    """Fit both variants and compare them with the truth on the forward test rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="E5")
    parser.add_argument("--bootstrap", type=int, default=300)
    args = parser.parse_args()

    import numpy as np
    import pandas as pd
    from xgboost import XGBClassifier

    from spanishgas.model.metrics import ranking_metrics
    from spanishgas.model.split import split_frame
    from spanishgas.model.train import TRUTH_FILE, forward_split, load_training_data
    from spanishgas.settings import get_settings

    settings = get_settings()
    data = load_training_data(settings, args.experiment)
    truth = pd.read_parquet(f"{settings.truth_dir}/{TRUTH_FILE}")
    truth["as_of_date"] = pd.to_datetime(truth["as_of_date"]).dt.date
    drivers = [c for c in truth.columns if c.startswith("driver_")]
    best = "p_observable" if "p_observable" in truth.columns else "p_true"
    columns = list(dict.fromkeys(["customer_id", "as_of_date", "p_true", best, *drivers]))
    frame = data.frame.merge(truth[columns], on=["customer_id", "as_of_date"])
    frame[drivers] = frame[drivers].astype(float)
    split = forward_split(settings, frame)
    train, validation, test = split_frame(frame, split)
    y = test["label"].to_numpy()
    best_m = ranking_metrics(y, test[best].to_numpy())
    oracle_m = ranking_metrics(y, test["p_true"].to_numpy())
    rng = np.random.default_rng(settings.seed)
    draws = [rng.integers(0, len(y), len(y)) for _ in range(args.bootstrap)]

    def fit(features: list[str]) -> dict[str, object]:
        model = XGBClassifier(
            n_estimators=4000,
            max_depth=4,
            learning_rate=0.02,
            min_child_weight=20,
            subsample=0.8,
            colsample_bytree=0.8,
            early_stopping_rounds=200,
            eval_metric="aucpr",
            n_jobs=2,
            random_state=settings.seed,
        )
        stop_on = [(validation[features], validation["label"])]
        model.fit(train[features], train["label"], eval_set=stop_on, verbose=False)
        p = model.predict_proba(test[features])[:, 1]
        m = ranking_metrics(y, p)
        b = test[best].to_numpy()
        ratios = [ranking_metrics(y[i], p[i])["pr_auc"] / ranking_metrics(y[i], b[i])["pr_auc"] for i in draws]
        return {
            "features": len(features),
            **{k: round(v, 4) for k, v in m.items()},
            "roc_auc_vs_best": round(m["roc_auc"] / best_m["roc_auc"], 4),
            "pr_auc_vs_best": round(m["pr_auc"] / best_m["pr_auc"], 4),
            "pr_auc_vs_best_95ci": [round(float(q), 3) for q in np.percentile(ratios, [2.5, 97.5])],
            "pr_auc_vs_oracle": round(m["pr_auc"] / oracle_m["pr_auc"], 4),
        }

    print(
        json.dumps(
            {
                "experiment": args.experiment,
                "split": split.describe(),
                "test_rows": len(test),
                "test_churners": int(y.sum()),
                "best_column": best,
                "best": {k: round(v, 4) for k, v in best_m.items()},
                "oracle": {k: round(v, 4) for k, v in oracle_m.items()},
                "features_only": fit(list(data.features)),
                "features_and_true_drivers": fit([*data.features, *drivers]),
            }
        )
    )


if __name__ == "__main__":
    main()
