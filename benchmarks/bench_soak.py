"""Benchmark: a soak of the call-center API, with `champion` moved twice while agents keep calling.

    export SPANISHGAS_PROFILE=stack SPANISHGAS_DATA_ROOT=data/bench-app ...   # as for bench_api.py
    .venv/bin/python benchmarks/bench_soak.py --seconds 600

Needs what bench_api.py needs (the stack profile's features in Redis, a champion, a segment model, `wrk`)
and a second registered version to move to: when the registry holds only the champion, a challenger is
trained first (``--trials`` Optuna trials on the same features). Then `spanishgas serve` with ``--workers``
runs under ``--clients`` wrk connections with a random think time for ``--seconds``, as back-to-back wrk
runs of ``--window-s`` each (latency per window). At one third of the time `champion` moves to the other version, at
two thirds back (a rollback, as an operator would). Every ``--sample-s`` the resident memory of each
worker is read from /proc, the version one answer carries is noted, and the share of requests answered
from the cache since the previous sample is read from the API's /metrics. Prints one JSON document: wrk's
totals, each worker's memory after warm-up and at the end, and when each worker started answering with
the new version.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_api import KEY, _serve, _wrk, python_loop_seconds


def ensure_two_versions(trials: int) -> tuple[str, str]:
    """(the champion, another registered version to move to), training a challenger when there is none."""
    from spanishgas.model.registry import alias_version
    from spanishgas.model.train import train
    from spanishgas.settings import get_settings

    settings = get_settings()
    champion = alias_version(settings, "champion")
    if champion is None:
        raise SystemExit("no champion: build the world first (benchmarks/build_world.sh)")
    other = alias_version(settings, "challenger")
    if other in (None, champion):
        other = train(settings, trials=trials).model_version
    return champion, str(other)


def worker_pids(server_pid: int) -> list[int]:
    """The uvicorn workers: the server's children started by multiprocessing's spawn (not its resource
    tracker)."""
    import psutil

    children = psutil.Process(server_pid).children(recursive=True)
    return sorted(c.pid for c in children if "spawn_main" in " ".join(c.cmdline()))


def resident_mb(pid: int) -> float:
    import psutil

    return round(psutil.Process(pid).memory_info().rss / 1024**2, 1)


def answered_version(port: int, customer_id: str) -> str | None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/score/{customer_id}", headers={"X-API-Key": KEY})
    with urllib.request.urlopen(request, timeout=5) as reply:
        return str(json.loads(reply.read())["model"]["version"])


def cache_lookups(port: int) -> tuple[float, float]:
    """(hits, misses) of the answer cache so far, both workers (the API's /metrics)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    found = {"hit": 0.0, "miss": 0.0}
    for line in text.splitlines():
        if line.startswith("spanishgas_api_score_cache_lookups_total{"):
            result = line.split('result="', 1)[1].split('"', 1)[0]
            found[result] = found.get(result, 0.0) + float(line.rsplit(" ", 1)[1])
    return found["hit"], found["miss"]


def soak(args: argparse.Namespace, ids: list[str], versions: tuple[str, str]) -> dict[str, Any]:
    """One long wrk run against the API while the champion moves twice; memory and versions sampled."""
    from spanishgas.model.registry import assign_champion, rollback
    from spanishgas.settings import get_settings

    settings = get_settings()
    folder = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    id_file = folder / "ids.txt"
    id_file.write_text("\n".join(ids) + "\n")
    server = _serve(args.port, args.workers, 50_000, folder / "server.log")
    samples: list[dict[str, Any]] = []
    moves: list[dict[str, Any]] = []
    windows: list[dict[str, Any]] = []
    try:
        _wrk(args.port, 4, 5, folder, id_file)  # the workers' connections, as in bench_api
        pids = worker_pids(server.pid)
        assert len(pids) == args.workers, f"found workers {pids}"
        runner = threading.Thread(target=lambda: windows.extend(load_windows(args, folder, id_file)))
        started = time.monotonic()
        runner.start()
        plan = [(args.seconds / 3, "move"), (2 * args.seconds / 3, "rollback")]
        while runner.is_alive():
            elapsed = time.monotonic() - started
            if plan and elapsed >= plan[0][0]:
                kind = plan.pop(0)[1]
                if kind == "move":
                    assign_champion(settings, versions[1], reason="soak benchmark")
                else:
                    rollback(settings, reason="soak benchmark")
                moves.append({"at_s": round(elapsed, 1), "kind": kind})
            sample = {"at_s": round(elapsed, 1), "rss_mb": [resident_mb(p) for p in pids]}
            sample["version"] = answered_version(args.port, ids[len(samples) % len(ids)])
            hits, misses = cache_lookups(args.port)
            if samples:  # the share of requests answered from the cache since the previous sample
                new_hits, new_misses = hits - samples[-1]["hits"], misses - samples[-1]["misses"]
                sample["hit_share"] = round(new_hits / max(new_hits + new_misses, 1.0), 4)
            sample["hits"], sample["misses"] = hits, misses
            samples.append(sample)
            runner.join(timeout=args.sample_s)
    finally:
        server.terminate()
        server.wait(timeout=60)
    return {
        "total": totals(windows),
        "windows": windows,
        "moves": moves,
        "samples": samples,
        "memory": memory_growth(samples, args.warm_up_s),
    }


def load_windows(args: argparse.Namespace, folder: Path, id_file: Path) -> list[dict[str, Any]]:
    """Back-to-back wrk runs of ``--window-s`` filling ``--seconds``: latency per window, so the minutes
    around a champion move can be told from the steady ones."""
    out = []
    for number in range(max(1, args.seconds // args.window_s)):
        result = _wrk(args.port, args.clients, args.window_s, folder, id_file, args.think_ms)
        out.append({"window": number, **result})
    return out


def totals(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests and errors over the soak, and the worst window's p99."""
    seconds = sum(w["seconds"] for w in windows)
    requests = sum(w["requests"] for w in windows)
    return {
        "seconds": seconds,
        "requests": requests,
        "requests_per_s": round(requests / seconds, 1),
        "errors": sum(w["errors"] + w["non2xx"] + w["timeouts"] for w in windows),
        "p99_ms_worst_window": max(w["p99_ms"] for w in windows),
        "p99_ms_median_window": sorted(w["p99_ms"] for w in windows)[len(windows) // 2],
    }


def memory_growth(samples: list[dict[str, Any]], warm_up_s: float) -> dict[str, Any]:
    """Each worker's resident memory just after warm-up, its highest, at the end, and the growth."""
    after = next(s for s in samples if s["at_s"] >= warm_up_s)
    last = samples[-1]
    out = []
    for i, start in enumerate(after["rss_mb"]):
        peak = max(s["rss_mb"][i] for s in samples if s["at_s"] >= warm_up_s)
        out.append(
            {
                "after_warm_up_mb": start,
                "peak_mb": peak,
                "end_mb": last["rss_mb"][i],
                "growth_end_pct": round(100 * (last["rss_mb"][i] - start) / start, 2),
                "growth_peak_pct": round(100 * (peak - start) / start, 2),
            }
        )
    return {"warm_up_s": warm_up_s, "workers": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--think-ms", type=int, default=19)
    parser.add_argument("--port", type=int, default=18081)
    parser.add_argument("--window-s", type=int, default=30, help="latency is reported per window this long")
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--warm-up-s", type=float, default=60.0, help="memory growth is measured from here")
    parser.add_argument("--trials", type=int, default=3, help="trials for the second version when one is needed")
    args = parser.parse_args()

    from spanishgas.retention.job import latest_candidates
    from spanishgas.settings import get_settings

    versions = ensure_two_versions(args.trials)
    _, candidates = latest_candidates(get_settings())
    ids = sorted(candidates["customer_id"].astype(str))
    report = {"customers": len(ids), "versions": versions, **soak(args, ids, versions)}
    report["machine_python_loop_s"] = python_loop_seconds()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
