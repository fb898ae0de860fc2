"""Benchmark: score, explain, segment and recommend every active customer, after the models are loaded.

    SPANISHGAS_DATA_ROOT=data/full .venv/bin/python benchmarks/bench_scoring.py --budget 50000

Needs a champion churn model and a registered segment model (``spanishgas train``, ``promote``,
``segment``) over a full-scale gold run. Times each step on the latest snapshot, best of ``--repeat``
runs, and prints one JSON line. Nothing is published.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=50_000.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import pandas as pd

    from spanishgas.model.registry import load_version
    from spanishgas.retention.job import latest_candidates, load_segments
    from spanishgas.retention.offers import load_policy
    from spanishgas.retention.scoring import recommend, score, segment
    from spanishgas.settings import get_settings

    settings = get_settings()
    t = time.perf_counter()
    champion = load_version(settings, "champion")
    segments = load_segments(settings)
    _, frame = latest_candidates(settings)
    policy = load_policy()
    load_s = time.perf_counter() - t
    runs = []
    for _ in range(args.repeat):
        steps = {}
        t = time.perf_counter()
        scored = score(champion.model, frame)
        steps["score_and_explain_s"] = time.perf_counter() - t
        t = time.perf_counter()
        segs = segment(segments, frame)
        steps["segment_s"] = time.perf_counter() - t
        t = time.perf_counter()
        _, summary = recommend(pd.concat([frame, scored, segs], axis=1), policy, args.budget)
        steps["recommend_s"] = time.perf_counter() - t
        steps["total_s"] = sum(steps.values())
        runs.append(steps)
    best = min(runs, key=lambda r: r["total_s"])
    trees = champion.model.pipeline.named_steps["xgb"].get_booster().num_boosted_rounds()
    print(
        json.dumps(
            {
                "customers": len(frame),
                "model_version": champion.version,
                "trees": trees,
                "load_s": round(load_s, 2),
                **{k: round(v, 3) for k, v in best.items()},
                "plan": summary["plan"],
                "rules_only": summary["rules_only"],
                "everyone_above_threshold": summary["everyone_above_threshold"],
            }
        )
    )


if __name__ == "__main__":
    main()
