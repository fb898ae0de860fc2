"""The demo: every stage that exists, end to end, on embedded defaults (local profile, no servers)."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

from rich.console import Console

from spanishgas.generator import GeneratorConfig, generate
from spanishgas.settings import Settings, get_settings


def run_demo(customers: int, workdir: Path, console: Console, settings: Settings | None = None) -> dict[str, Path]:
    """Generate a synthetic delivery, run bronze, silver and gold on it; return where the outputs are."""
    from spanishgas.etl.pipeline import run_bronze, run_gold, run_silver
    from spanishgas.spark import get_spark

    t0 = time.perf_counter()
    base = settings or get_settings()
    settings = base.model_copy(update={"lake_uri": str(workdir / "lake")})
    raw, truth = workdir / "raw", workdir / "truth"
    console.rule("1/4 generate a synthetic delivery (2024)")
    cfg = GeneratorConfig(
        customers=customers, start=date(2024, 1, 1), end=date(2024, 12, 31), out_dir=raw, truth_dir=truth
    )
    report = generate(cfg, overwrite=True)
    console.print(
        f"wrote {len(report.files)} raw files for {report.customers_delivered:,} customers ({report.seconds} s)"
    )
    spark = get_spark("spanishgas-demo", settings)
    stages = (("2/4 bronze", run_bronze, {"raw_dir": raw}), ("3/4 silver", run_silver, {}), ("4/4 gold", run_gold, {}))
    manifests = {}
    for title, stage, kwargs in stages:
        console.rule(title)
        t = time.perf_counter()
        manifest = stage(settings, spark=spark, **kwargs)  # type: ignore[operator]
        manifests[title] = manifest
        console.print(f"published {manifest['run_id']} ({time.perf_counter() - t:.1f} s)")
    gold = manifests["4/4 gold"]
    console.print(
        f"training set: {gold['rows']['churn_training_dataset']:,} rows; "
        f"offer candidates: {gold['rows']['recommendation_candidates']:,}"
    )
    outputs = {
        "raw files": raw,
        "ground truth": truth,
        "lake": Path(str(settings.lake_uri)),
        "data docs": Path(settings.gx_root) / "uncommitted" / "data_docs" / "local_site" / "index.html",
    }
    console.rule(f"demo finished in {time.perf_counter() - t0:.1f} s")
    for name, path in outputs.items():
        console.print(f"{name:>14}: {path.resolve()}")
    return outputs
