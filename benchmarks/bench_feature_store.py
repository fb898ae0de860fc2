"""Benchmark: the feature store on the stack profile (Postgres offline store, Redis online store).

    SPANISHGAS_DATA_ROOT=data/full .venv/bin/python benchmarks/bench_feature_store.py

Needs a lake with a published full-scale gold run (``spanishgas generate --customers 20099`` then
bronze, silver, gold) and Postgres and Redis on loopback. Uses its own Feast project, Postgres database
and Redis database (flushed first), so it never touches a real feature store. Measures: the COPY load,
apply, materializing every customer's latest features to Redis, the point-in-time training set, and the
online fetch of the model's service (churn_model_v1) and the API's (call_center_v1) for one
customer through the Feast SDK (p50/p99 over
``--fetches`` calls after a warm-up). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from datetime import datetime, timedelta


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fetches", type=int, default=5000)
    parser.add_argument("--redis-db", type=int, default=14)
    parser.add_argument(
        "--services", default="churn_model_v1,call_center_v1", help="services to fetch, comma-separated"
    )
    args = parser.parse_args()

    import redis

    from spanishgas.feature_store.offline import last_load, load_offline
    from spanishgas.feature_store.store import (
        apply,
        feature_columns,
        get_store,
        materialize,
        training_entities,
        training_set,
    )
    from spanishgas.settings import Settings

    base = Settings()
    settings = base.model_copy(update={"profile": "stack", "lake_uri": base.lake_uri})
    settings.feast.project = "bench"
    settings.feast.database = "spanishgas_bench_features"
    settings.redis.db = args.redis_db
    redis.Redis(host=settings.redis.host, port=settings.redis.port, db=args.redis_db).flushdb()

    figures: dict[str, object] = {}
    report = load_offline(settings)
    figures.update(gold_run=report.gold_run_id, offline_rows=report.rows, customers=report.customers)
    figures["load_copy_s"] = report.seconds

    store = get_store(settings)
    t = time.perf_counter()
    apply(settings, store)
    figures["apply_s"] = round(time.perf_counter() - t, 2)

    # Redis was flushed above, so materialize the whole window explicitly: an incremental run would
    # trust the registry's record of earlier runs and leave the online store empty.
    end = datetime.fromisoformat(last_load(settings).last_event) + timedelta(seconds=1)
    start = end - timedelta(days=settings.feast.ttl_days, seconds=1)
    t = time.perf_counter()
    done = materialize(settings, start=start, end=end, store=store)
    figures["materialize_s"] = round(time.perf_counter() - t, 2)
    figures["materialized_views"] = len(done.feature_views)

    entities = training_entities(settings)
    t = time.perf_counter()
    frame = training_set(settings, entities, store=store)
    figures["training_set_s"] = round(time.perf_counter() - t, 2)
    figures["training_rows"] = len(frame)

    customers = sorted(entities["customer_id"].unique())
    rng = random.Random(7)
    for name in args.services.split(","):
        service = store.get_feature_service(name)
        for cid in rng.sample(customers, 200):  # warm-up: registry cache, connections
            store.get_online_features(features=service, entity_rows=[{"customer_id": cid}])
        latencies = []
        answered = 0
        for cid in (rng.choice(customers) for _ in range(args.fetches)):
            t = time.perf_counter()
            row = store.get_online_features(features=service, entity_rows=[{"customer_id": cid}]).to_dict()
            latencies.append((time.perf_counter() - t) * 1000)
            answered += any(v[0] is not None for k, v in row.items() if k != "customer_id")
        # An empty online store answers fast with nulls: only figures over real vectors count.
        if answered < 0.9 * len(latencies):
            raise SystemExit(f"only {answered} of {len(latencies)} fetches found features: is Redis materialized?")
        latencies.sort()
        figures[f"online_fetch_ms_{name}"] = {
            "features": len(feature_columns(store, name)),
            "views": len(service.feature_view_projections),
            "p50": round(statistics.median(latencies), 3),
            "p99": round(latencies[int(0.99 * len(latencies)) - 1], 3),
            "n": len(latencies),
            "with_features": answered,
        }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
