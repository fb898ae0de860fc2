"""Benchmark: the best-possible churn probability (``p_observable``) of a full-scale world.

    .venv/bin/python benchmarks/bench_observable_truth.py [--customers 20099] [--start 2023-01-01]

Simulates the world ``spanishgas generate`` would (no files written), then times the oracle
(``p_true``) and the best-possible probability, and prints one JSON line with both timings, the rows
and, for the last as-of date whose horizon is complete, the best possible's ROC-AUC and PR-AUC.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date


def main() -> None:
    """Simulate, time both probabilities, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_099)
    parser.add_argument("--start", default="2023-01-01")
    parser.add_argument("--end", default="2024-12-31")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    import numpy as np

    from spanishgas.generator import GeneratorConfig
    from spanishgas.generator.observable_truth import observable_probabilities
    from spanishgas.generator.world import simulate, truth_probabilities
    from spanishgas.model.metrics import ranking_metrics

    cfg = GeneratorConfig(
        customers=args.customers,
        start=date.fromisoformat(args.start),
        end=date.fromisoformat(args.end),
        seed=args.seed,
    )
    t = time.perf_counter()
    world = simulate(cfg)
    simulate_s = time.perf_counter() - t
    t = time.perf_counter()
    oracle = truth_probabilities(world, cfg.label_horizon_days)
    oracle_s = time.perf_counter() - t
    t = time.perf_counter()
    best = observable_probabilities(world, cfg.label_horizon_days, cfg.truth_replicates)
    best_s = time.perf_counter() - t

    horizon = np.timedelta64(cfg.label_horizon_days, "D")
    as_of = world.month_starts[best["month"]]
    complete = as_of + horizon <= np.datetime64(cfg.end, "D")
    last = as_of == as_of[complete].max()
    churn = world.churn_date[best["customer"]]
    label = ~np.isnat(churn) & (churn > as_of) & (churn <= as_of + horizon)
    metrics = ranking_metrics(label[last].astype(int), best["p_observable"][last])
    print(
        json.dumps(
            {
                "benchmark": "observable_truth",
                "customers": len(world.population),
                "rows": len(best["p_observable"]),
                "replicates": cfg.truth_replicates,
                "simulate_s": round(simulate_s, 1),
                "oracle_s": round(oracle_s, 1),
                "best_possible_s": round(best_s, 1),
                "last_complete_as_of": str(as_of[last][0]),
                "best_possible_roc_auc": round(metrics["roc_auc"], 4),
                "best_possible_pr_auc": round(metrics["pr_auc"], 4),
                "oracle_rows": len(oracle["p_true"]),
            }
        )
    )


if __name__ == "__main__":
    main()
