"""Benchmark: how each stage's time and memory grow with the customers (issue "The full stack ...").

    .venv/bin/python benchmarks/bench_scaling.py                       # 0.25x, 0.5x, 1x, 2x of 20,099 customers
    .venv/bin/python benchmarks/bench_scaling.py --scales 0.25 0.5     # a quicker curve
    .venv/bin/python benchmarks/bench_scaling.py --work data/scaling --trials 5

For each scale: one year of the utility's book generated, then every stage the README runs, each as its own
`spanishgas` process, the way an operator runs them: bronze, silver, gold (local[*]), the feature load,
apply and materialize in the stack profile (Postgres offline store, the online store in a Redis server of
the benchmark's own so its memory is the features' alone), training (Optuna, `--trials`), segments and
batch scoring. Per stage: wall seconds and the peak resident memory of the process and everything it
started (the JVM, Spark's Python workers). After materializing: the online store's bytes per customer
(Redis `used_memory` over an empty server). Then a power law per stage, seconds = a * customers^b, fitted
by least squares on the logarithms: b near 1 grows with the data, below 1 is fixed cost dominated.
Prints one JSON line per scale and the fit; figures go to docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FULL_SCALE = 20_099  # customers of the full-scale world (benchmarks/build_world.sh)
BIN = Path(sys.executable).parent


def stages(root: Path, customers: int, trials: int) -> list[tuple[str, list[str]]]:
    """The stages in order, as `spanishgas` commands."""
    return [
        ("generate", ["generate", "--customers", str(customers), "--start", "2024-01-01", "--end", "2024-12-31",
                      "--out", str(root / "raw"), "--truth", str(root / "truth"), "--overwrite"]),
        ("bronze", ["bronze"]),
        ("silver", ["silver"]),
        ("gold", ["gold"]),
        ("features load", ["features", "load"]),
        ("features apply", ["features", "apply"]),
        ("features materialize", ["features", "materialize"]),
        ("train", ["train", "--trials", str(trials)]),
        ("promote", ["promote", "--floor", "0", "--reason", "scaling benchmark"]),
        ("segment", ["segment"]),
        ("score", ["score"]),
    ]  # fmt: skip


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            total += proc.memory_info().rss / 2**20
        except psutil.Error:
            continue
    return total


def run_stage(args: list[str], env: dict[str, str], log: Path, allowed: tuple[int, ...] = (0,)) -> dict[str, float]:
    """Run one `spanishgas` command; its seconds and peak tree memory (sampled every 0.25 s)."""
    started = time.perf_counter()
    with log.open("ab") as out:
        out.write(f"\n$ spanishgas {' '.join(args)}\n".encode())
        out.flush()
        process = subprocess.Popen([str(BIN / "spanishgas"), *args], env=env, stdout=out, stderr=subprocess.STDOUT)
        peak = 0.0
        while process.poll() is None:
            peak = max(peak, tree_rss_mb(process.pid))
            time.sleep(0.25)
    seconds = time.perf_counter() - started
    if process.returncode not in allowed:
        raise SystemExit(f"spanishgas {' '.join(args)} failed ({process.returncode}); see {log}")
    return {"seconds": round(seconds, 1), "peak_mb": round(peak), "exit": process.returncode}


def assign_first_champion(env: dict[str, str]) -> None:
    """On a world too small for the gate (2: not promoted), the first version serves anyway, as in the demo:
    the stages after it are what is measured, not the model's quality."""
    code = (
        "from spanishgas.model.registry import assign_champion; from spanishgas.settings import get_settings; "
        "assign_champion(get_settings(), '1', 'scaling benchmark: the gate refused a world this small')"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_used_memory(port: int) -> tuple[int, int]:
    """(used_memory bytes, keys) of the benchmark's Redis."""
    import redis

    client = redis.Redis(port=port)
    return int(client.info("memory")["used_memory"]), int(client.dbsize())


def environment(root: Path, redis_port: int, scale: float) -> dict[str, str]:
    """The stack profile with the lake, MLflow and Optuna on local files, Postgres databases of the scale's
    own and the benchmark's Redis."""
    tag = f"scale_{str(scale).replace('.', '_')}"
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("SPANISHGAS_")},
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPANISHGAS_PROFILE": "stack",
        "SPANISHGAS_DATA_ROOT": str(root),
        "SPANISHGAS_LAKE_URI": str(root / "lake"),
        "SPANISHGAS_GX_ROOT": str(root / "great_expectations"),
        "SPANISHGAS_MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "SPANISHGAS_MLFLOW_REGISTRY_URI": f"sqlite:///{root / 'mlflow.db'}",
        "SPANISHGAS_OPTUNA_STORAGE": f"sqlite:///{root / 'optuna.db'}",
        "SPANISHGAS_MONITORING__DATABASE_URL": f"sqlite:///{root / 'monitoring.db'}",
        "SPANISHGAS_POSTGRES__DATABASE": f"spanishgas_{tag}",
        "SPANISHGAS_FEAST__DATABASE": f"spanishgas_features_{tag}",
        "SPANISHGAS_FEAST__PROJECT": tag,
        "SPANISHGAS_REDIS__PORT": str(redis_port),
    }


def measure_scale(scale: float, work: Path, trials: int) -> dict[str, Any]:
    customers = round(FULL_SCALE * scale)
    root = work / f"x{scale}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    port = free_port()
    redis_dir = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(redis_dir)], stdout=subprocess.DEVNULL
    )  # fmt: skip
    try:
        time.sleep(0.5)
        env = environment(root, port, scale)
        log = root / "stages.log"
        result: dict[str, Any] = {"scale": scale, "customers": customers, "stages": {}}
        empty, _ = redis_used_memory(port)
        for name, args in stages(root, customers, trials):
            result["stages"][name] = run_stage(args, env, log, allowed=(0, 2) if name == "promote" else (0,))
            if name == "promote" and result["stages"][name]["exit"] == 2:
                assign_first_champion(env)
            print(f"x{scale} {name}: {result['stages'][name]}", file=sys.stderr, flush=True)
            if name == "features materialize":
                used, keys = redis_used_memory(port)
                result["online_store"] = {"bytes": used - empty, "keys": keys,
                                          "bytes_per_key": round((used - empty) / max(keys, 1))}  # fmt: skip
        result["hourly_readings"] = _hourly_readings(root)
        return result
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(redis_dir, ignore_errors=True)


def _hourly_readings(root: Path) -> int:
    """Readings in the published silver hourly table (the ETL's volume)."""
    from spanishgas.lake_reader import LakeReader

    reader = LakeReader(str(root / "lake"))
    manifest = reader.manifest("silver", reader.latest_run("silver"))
    return int(manifest["rows"]["consumption_hourly"])


def power_law(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(a, b) of y = a * x^b fitted on log-log by least squares."""
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(max(y, 1e-3)) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return math.exp(my - b * mx), b


def linear(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(fixed, per customer) of y = fixed + per * x, by least squares."""
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    per = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return my - per * mx, per


def fit(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per stage: the power law's exponents, and a fixed cost plus a cost per customer (the better guide
    beyond the measured range: the small scales are dominated by start-up), extrapolated to 10x and 100x."""
    fitted = {}
    for name in results[0]["stages"]:
        seconds = [(r["customers"], r["stages"][name]["seconds"]) for r in results]
        memory = [(r["customers"], r["stages"][name]["peak_mb"]) for r in results]
        fixed, per = linear(seconds)
        fixed_mb, per_mb = linear(memory)
        fitted[name] = {
            "seconds_exponent": round(power_law(seconds)[1], 2),
            "memory_exponent": round(power_law(memory)[1], 2),
            "fixed_s": round(fixed, 1),
            "ms_per_customer": round(1000 * per, 3),
            **{f"seconds_at_{k}x": round(fixed + per * k * FULL_SCALE) for k in (10, 100)},
            "fixed_mb": round(fixed_mb),
            "kb_per_customer": round(1024 * per_mb, 1),
            **{f"peak_mb_at_{k}x": round(fixed_mb + per_mb * k * FULL_SCALE) for k in (10, 100)},
        }
    return fitted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0])
    parser.add_argument("--work", type=Path, default=Path("data/scaling"))
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--results", type=Path, help="fit the JSON lines of an earlier run instead of measuring")
    args = parser.parse_args()
    if args.results:
        lines = [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]
        results = [r for r in lines if "scale" in r]
    else:
        results = []
        for scale in args.scales:
            result = measure_scale(scale, args.work, args.trials)
            print(json.dumps(result), flush=True)
            results.append(result)
    if len(results) >= 2:
        print(json.dumps({"fit": fit(results)}), flush=True)


if __name__ == "__main__":
    main()
