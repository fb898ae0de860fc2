"""Benchmark: the call-center API, GET /score/{customer_id}, under a real HTTP load tool.

    SPANISHGAS_PROFILE=stack SPANISHGAS_DATA_ROOT=data/full ... .venv/bin/python benchmarks/bench_api.py

Needs the stack profile's features materialized in Redis, a champion and a segment model (the full-scale
chain in docs/benchmarks.md) and `wrk` (Debian: `apt-get install wrk`). Two parts:

1. In process: where one request's time goes (Feast SDK read vs direct Redis read, scoring with
   TreeSHAP reasons and the recommendation, a cached answer), median and p99 of ``--calls`` calls.
2. Over HTTP: ``spanishgas serve`` started here with ``--workers``; wrk with 1 connection, then
   ``--clients`` connections pausing a random 0 to 2 x ``--think-ms`` between requests (call-center
   agents, about 700 requests/s in all), then ``--clients`` connections flat out, each for
   ``--seconds``, on customer ids drawn at random from every customer the store holds. Run once with
   the scored-vector cache off (every request computes its answer) and once with the default: the
   cache on and warmed with every customer when the model loads. Then, with the default, the day
   after: the features are loaded again a day later and materialized for real (every vector changes),
   and the think-time load runs twice more while the workers notice and warm the new answers. This
   rewrites the offline store and Redis of the settings in use: run it on a benchmark world.

Prints one JSON document; nothing is written.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

KEY = "bench-key"
LUA = """
local ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
math.randomseed(%(seed)d)
request = function()
  return wrk.format("GET", "/score/" .. ids[math.random(#ids)], {["X-API-Key"] = "%(key)s"})
end
if %(think_ms)d > 0 then
  -- each client waits a random 0 to 2 x think_ms between answers: agents are not in lockstep
  delay = function() return math.random(0, 2 * %(think_ms)d) end
end
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %%d, \\"non2xx\\": %%d, \\"errors\\": %%d, \\"timeouts\\": %%d,"
    .. " \\"p50_ms\\": %%.3f, \\"p90_ms\\": %%.3f, \\"p99_ms\\": %%.3f, \\"p999_ms\\": %%.3f, \\"max_ms\\": %%.3f}\\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.timeout, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000))
end
"""


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 3),
    }


def _timed(call: Any, items: list[Any]) -> dict[str, float]:
    """Median and p99 of ``call(item)`` over the items."""
    times = []
    for item in items:
        started = time.perf_counter()
        call(item)
        times.append(time.perf_counter() - started)
    return _percentiles(times)


def in_process(calls: int, ids: list[str]) -> dict[str, Any]:
    """Time the pieces of one request without HTTP."""
    from spanishgas.feature_store.store import get_store
    from spanishgas.serving.online import FeastReader, RedisReader
    from spanishgas.serving.service import ScoringService
    from spanishgas.settings import get_settings

    settings = get_settings()
    settings = settings.model_copy(update={"api": settings.api.model_copy(update={"warm_cache": False})})
    store = get_store(settings)
    sdk = FeastReader(store)
    # the stack profile reads Redis directly; the local profile has only the SDK over SQLite
    direct = RedisReader.from_store(store, settings) if settings.profile == "stack" else sdk
    service = ScoringService(settings, direct)
    assert service.load(), service.last_load_error
    served = service.served
    assert served is not None
    # distinct customers, so the "cache empty" pass really misses every time
    sample = random.sample(ids, min(calls, len(ids)))
    out: dict[str, Any] = {"model_version": served.version}
    booster = served.churn.pipeline.named_steps["xgb"].get_booster()
    out["trees"] = booster.num_boosted_rounds()
    out["max_depth"] = served.churn.pipeline.named_steps["xgb"].get_params().get("max_depth")
    readers = {"read_feast_sdk": sdk} | ({"read_redis_direct": direct} if direct is not sdk else {})
    for name, reader in readers.items():
        out[name] = _timed(lambda c, r=reader: r.read([c]), sample)
    vectors = [v.values for v in direct.read(sample[: min(calls, 2000)])]
    for lang in ("es", "en"):
        # score + TreeSHAP reasons + segment + recommendation with its why, rendered in the language
        out[f"score_explain_recommend_uncached_{lang}"] = _timed(
            lambda v, g=lang: service._compute(served, [v], g), vectors
        )
    out["service_score_customer_cache_empty"] = _timed(service.score_customer, sample)
    out["service_score_customer_cache_hits"] = _timed(service.score_customer, sample)
    started = time.perf_counter()
    out["warm_up_customers"] = service.warm(served)
    out["warm_up_s"] = round(time.perf_counter() - started, 2)
    return out


def _serve(port: int, workers: int, cache: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SPANISHGAS_API__API_KEYS": json.dumps([KEY]),
        "SPANISHGAS_API__EXPLANATION_CACHE_SIZE": str(cache),
    }
    binary = str(Path(sys.executable).with_name("spanishgas"))
    args = [binary, "serve", "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(args, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as reply:
                if reply.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError(f"the API did not become ready: {log.read_text()[-2000:]}")


def _wrk(port: int, clients: int, seconds: int, folder: Path, ids: Path, think_ms: int = 0) -> dict[str, Any]:
    script = folder / f"score-{think_ms}.lua"
    script.write_text(LUA % {"ids": ids, "seed": 7, "key": KEY, "think_ms": think_ms})
    # One wrk thread: a second one would take CPU from the server on a 2-core machine.
    args = ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script)]
    reply = subprocess.run([*args, f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True)
    found = re.search(r"^JSON (.*)$", reply.stdout, re.MULTILINE)
    assert found, reply.stdout
    result: dict[str, Any] = json.loads(found.group(1))
    result["requests_per_s"] = round(result["requests"] / seconds, 1)
    result["clients"], result["seconds"], result["think_ms_mean"] = clients, seconds, think_ms
    return result


def next_days_features() -> dict[str, Any]:
    """The next day's copy of the features, materialized for real: every snapshot a day later and every
    contract a day nearer its renewal (so every customer's vector, and every cache key, changes), loaded
    into the offline store and copied to Redis by the platform's own functions."""
    import dataclasses
    from datetime import UTC, datetime, timedelta

    import pyarrow.compute as pc

    from spanishgas.feature_store.definitions import TIMESTAMP_FIELD
    from spanishgas.feature_store.offline import last_load, read_gold_features, record_load, write_offline_table
    from spanishgas.feature_store.store import materialize
    from spanishgas.settings import get_settings

    settings = get_settings()
    started = time.perf_counter()
    _, table = read_gold_features(settings)
    shifted = pc.add(table[TIMESTAMP_FIELD], pa_duration(timedelta(days=1)))
    table = table.set_column(table.schema.get_field_index(TIMESTAMP_FIELD), TIMESTAMP_FIELD, shifted)
    renewal = table.schema.get_field_index("months_to_renewal")
    table = table.set_column(renewal, "months_to_renewal", pc.subtract(table["months_to_renewal"], 1 / 30.44))
    write_offline_table(settings, table)
    before = last_load(settings)
    last = datetime.fromisoformat(before.last_event) + timedelta(days=1)
    record_load(
        settings, dataclasses.replace(before, loaded_at=datetime.now(UTC).isoformat(), last_event=last.isoformat())
    )
    report = materialize(settings)
    return {"materialize_s": report.seconds, "load_and_materialize_s": round(time.perf_counter() - started, 1)}


def pa_duration(delta: Any) -> Any:
    """A duration scalar Arrow adds to timestamps."""
    import pyarrow as pa

    return pa.scalar(delta, type=pa.duration("us"))


def over_http(ids: list[str], workers: int, clients: int, seconds: int, port: int, think_ms: int) -> dict[str, Any]:
    """wrk against `spanishgas serve`, cache off then warmed: one client; ``clients`` clients with a
    random think time (an offered load near ``clients`` / ``think_ms``); ``clients`` clients flat out."""
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    folder = Path(tempfile.mkdtemp(prefix="bench-api-"))
    id_file = folder / "ids.txt"
    id_file.write_text("\n".join(ids) + "\n")
    results: dict[str, Any] = {}
    try:
        for label, cache in (("cache_off", 0), ("cache_warmed", 50_000)):
            server = _serve(port, workers, cache, folder / f"server-{label}.log")
            try:
                _wrk(port, 4, 5, folder, id_file)  # warm the workers' connections
                results[label] = {
                    "single_client": _wrk(port, 1, seconds, folder, id_file),
                    f"{clients}_clients_think_time": _wrk(port, clients, seconds, folder, id_file, think_ms),
                    f"{clients}_clients_flat_out": _wrk(port, clients, seconds, folder, id_file),
                }
                if cache:
                    # The day after: every vector new. Agents keep calling while the workers notice the
                    # store's record (every reload interval) and warm the new answers.
                    results["just_after_materialization"] = {
                        "materialization": next_days_features(),
                        f"{clients}_clients_think_time_first_{seconds}s": _wrk(
                            port, clients, seconds, folder, id_file, think_ms
                        ),
                        f"{clients}_clients_think_time_next_{seconds}s": _wrk(
                            port, clients, seconds, folder, id_file, think_ms
                        ),
                    }
            finally:
                server.terminate()
                server.wait(timeout=30)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return results


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000, help="in-process calls per measurement")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--think-ms", type=int, default=19, help="mean pause of each client between requests")
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()

    from spanishgas.retention.job import latest_candidates
    from spanishgas.settings import get_settings

    random.seed(7)
    _, candidates = latest_candidates(get_settings())
    ids = sorted(candidates["customer_id"].astype(str))
    report: dict[str, Any] = {"customers": len(ids), "in_process": in_process(args.calls, ids)}
    if not args.skip_http:
        report["http"] = over_http(ids, args.workers, args.clients, args.seconds, args.port, args.think_ms)
    report["machine_cores"] = os.cpu_count()
    report["machine_python_loop_s"] = python_loop_seconds()
    print(json.dumps(report, indent=2))


def python_loop_seconds(n: int = 10_000_000) -> float:
    """Seconds for a plain Python loop of ``n`` additions, best of three: how fast this machine runs
    Python today (the same code has measured three times slower on one day than another)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(n):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


if __name__ == "__main__":
    main()
