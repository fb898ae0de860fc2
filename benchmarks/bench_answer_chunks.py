"""Benchmark: what one API answer costs scored alone and in chunks (the numbers behind ADR 0021's paced
warm-up), and what loading the champion again costs (the stall of a champion move).

    export SPANISHGAS_PROFILE=stack ...   # a full-scale world with its features in Redis, as for bench_soak.py
    .venv/bin/python benchmarks/bench_answer_chunks.py

In process, cache and warm-up off: 2,000 customers' online vectors read once, then scored by the service's
own `_compute` in chunks of 1, 10, 50, 200 and 2,000 rows; the Redis read per chunk of 10 and 50; the
champion loaded from the registry again. Prints one JSON line.
"""

from __future__ import annotations

import json
import time


def main() -> None:
    from spanishgas.model.registry import CHAMPION
    from spanishgas.serving import build_service
    from spanishgas.settings import get_settings

    settings = get_settings()
    settings.api.warm_cache = False
    service = build_service(settings)
    service.load()
    served = service.served
    ids = service.reader.customer_ids()[:2000]
    vectors = [v for v in service.reader.read(ids) if v.found]
    report: dict[str, object] = {"customers": len(vectors), "compute_ms_per_answer": {}, "read_ms_per_chunk": {}}
    for size in (1, 10, 50, 200, 2000):
        started = time.perf_counter()
        for start in range(0, len(vectors), size):
            service._compute(served, [v.values for v in vectors[start : start + size]], "es", observe=False)
        report["compute_ms_per_answer"][size] = round((time.perf_counter() - started) / len(vectors) * 1000, 3)  # type: ignore[index]
    for size in (10, 50):
        started = time.perf_counter()
        for start in range(0, len(ids), size):
            service.reader.read(ids[start : start + size])
        report["read_ms_per_chunk"][size] = round((time.perf_counter() - started) / (len(ids) / size) * 1000, 2)  # type: ignore[index]
    started = time.perf_counter()
    service._load(CHAMPION)
    report["champion_load_s"] = round(time.perf_counter() - started, 3)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
