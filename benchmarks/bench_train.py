"""Benchmark: full-scale churn model training (quality against the ground truth, and tuning time).

    SPANISHGAS_DATA_ROOT=data/full .venv/bin/python benchmarks/bench_train.py --trials 50

Needs a full-scale lake (``spanishgas generate --customers 20099``, the default 2023-01..2024-12,
then bronze, silver, gold) loaded into the feature store (``spanishgas features load`` and ``apply``).
Uses a fresh Optuna study (``--study``), so the tuning really runs; logs and registers to the profile's
MLflow like ``spanishgas train``. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--experiment", default="E5")
    args = parser.parse_args()

    from spanishgas.model.train import load_training_data, train
    from spanishgas.settings import get_settings

    settings = get_settings()
    t = time.perf_counter()
    data = load_training_data(settings, args.experiment)
    load_s = time.perf_counter() - t
    settings.optuna_storage = f"sqlite:///{settings.data_root}/optuna-bench-{int(time.time())}.db"
    report = train(settings, args.experiment, args.trials, data=data)
    print(
        json.dumps(
            {
                "rows": report.rows,
                "split": report.split,
                "training_set_s": round(load_s, 1),
                "tuning_s": report.tuning["seconds"],
                "trials_complete": report.tuning["trials_complete"],
                "trials_pruned": report.tuning["trials_pruned"],
                "train_total_s": report.seconds,
                "test_pr_auc": round(report.test["pr_auc"], 4),
                "test_roc_auc": round(report.test["roc_auc"], 4),
                "truth_pr_auc": round(report.truth.get("truth_pr_auc", float("nan")), 4),
                "truth_roc_auc": round(report.truth.get("truth_roc_auc", float("nan")), 4),
                "roc_auc_vs_truth": round(report.truth.get("roc_auc_vs_truth", float("nan")), 4),
                "pr_auc_vs_truth": round(report.truth.get("pr_auc_vs_truth", float("nan")), 4),
                "lr_pr_auc": round(report.baselines["logistic_regression"]["pr_auc"], 4),
                "rf_pr_auc": round(report.baselines["random_forest"]["pr_auc"], 4),
                "brier": round(report.test["brier"], 5),
                "brier_uncalibrated": round(report.test["brier_uncalibrated"], 5),
                "calibration": report.calibration,
                "model_version": report.model_version,
            }
        )
    )


if __name__ == "__main__":
    main()
