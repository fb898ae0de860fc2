"""Drift of a whole year of clean months: how many watched features warn or alert, month by month.

    SPANISHGAS_DATA_ROOT=data/bench .venv/bin/python benchmarks/clean_year_drift.py \
        --lake data/bench_continued/lake --from 2025-01-01

The data root holds the champion (trained on a delivery); ``--lake`` is the lake of the same world
generated further on with no scenario (`spanishgas generate --end <a year later>` with the same seed and
customers, then bronze, silver and gold into that lake). Every gold snapshot from ``--from`` on is
compared with the champion's reference exactly as `spanishgas monitor` compares the latest one. Prints
one markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    """Run the comparison for every snapshot and print the counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True)
    parser.add_argument("--from", dest="first", required=True, help="first as-of date, YYYY-MM-01")
    args = parser.parse_args()

    from datetime import date

    import pandas as pd
    import pyarrow.dataset as ds

    from spanishgas.lake_reader import LakeReader
    from spanishgas.model.registry import load_version
    from spanishgas.monitoring.drift import feature_drift, prediction_drift
    from spanishgas.monitoring.reference import load_reference
    from spanishgas.monitoring.rules import load_thresholds
    from spanishgas.retention.scoring import with_value_fields
    from spanishgas.settings import get_settings

    settings = get_settings()
    monitoring = settings.monitoring
    champion = load_version(settings, "champion")
    profile, sample = load_reference(settings, champion.run_id, champion.version)
    lake = LakeReader(args.lake)
    gold = lake.latest_run("gold")
    dates = [date.fromisoformat(d) for d in lake.manifest("gold", gold)["as_of_dates"]]
    rows = []
    for day in [d for d in dates if d >= date.fromisoformat(args.first)]:
        snapshot = lake.read_table("gold", gold, "customer_features_asof", filter=ds.field("as_of_date") == day)
        frame = with_value_fields(snapshot.to_pandas())
        drift = feature_drift(
            profile, sample, frame, load_thresholds(monitoring), monitoring.min_rows, monitoring.significance
        )
        p = champion.model.predict_proba(frame)
        prediction = prediction_drift(
            profile,
            p,
            champion.model.tiers(p),
            (monitoring.psi_warn, monitoring.psi_alert),
            (monitoring.expected_rate_warn, monitoring.expected_rate_alert),
        )
        judged = drift[drift["judged"]]
        rows.append(
            {
                "as_of": str(day),
                "customers": len(frame),
                "reference": judged.loc[judged["slice"] == "book", "reference_slice"].iloc[0],
                "watched": len(drift),
                "judged": len(judged),
                "warn": int((drift["level"] == "warn").sum()),
                "alert": int((drift["level"] == "alert").sum()),
                "warned": ", ".join(sorted(set(drift.loc[drift["level"] == "warn", "feature"]))),
                "alerted": ", ".join(sorted(set(drift.loc[drift["level"] == "alert", "feature"]))),
                "score_psi": round(prediction["psi"], 4),
                "expected_rate_change": round(prediction["expected_rate_change"], 3),
                "score_level": prediction["level"],
            }
        )
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False))
    print(json.dumps({"months": len(table), "warn": int(table["warn"].sum()), "alert": int(table["alert"].sum())}))


if __name__ == "__main__":
    main()
