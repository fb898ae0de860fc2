"""The three layer stages as the CLI, Spark jobs and DAGs call them: build, gate, publish."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spanishgas import progress
from spanishgas.feature_registry import feature_names
from spanishgas.lake import Lake, new_run_id
from spanishgas.quality import gates
from spanishgas.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def _session(settings: Settings, spark: SparkSession | None, name: str) -> SparkSession:
    from spanishgas.spark import get_spark

    return spark or get_spark(f"spanishgas-{name}", settings)


def _gate_all(
    lake: Lake,
    layer: str,
    run_id: str,
    manifest: dict[str, Any],
    checks: list[tuple[str, Any, list[gates.Rule]]],
    gx_root: Path,
) -> None:
    """Run every table's gate; on the first failure record it and raise, publishing nothing."""
    ctx = gates.context(gx_root)
    manifest["gates"] = {}
    reports: list[Any] = []
    t0 = time.perf_counter()
    try:
        with progress.steps(f"{layer} gates", total=len(checks)) as step:
            for table, df, rules in checks:
                manifest["gates"][table] = gates.run_gate(ctx, layer, table, df, rules, reports)
                step(f"{table} passed")
    except gates.GateFailed as exc:
        manifest["gates"][exc.table] = {"success": False, "failures": exc.failures}
        manifest["status"] = "failed"
        lake.write_manifest(layer, run_id, manifest)
        raise
    finally:
        # a failed gate's report is what the engineer opens first, so it is rendered too
        gates.update_data_docs(ctx, reports)
    manifest["gate_seconds"] = round(time.perf_counter() - t0, 2)
    manifest["status"] = "published"


def run_bronze(
    settings: Settings, raw_dir: Path | None = None, run_id: str | None = None, spark: SparkSession | None = None
) -> dict[str, Any]:
    """Ingest the raw drop into a new bronze run, gate it, publish it. Returns the manifest."""
    from pyspark.sql import functions as F

    from spanishgas.etl.bronze import STATUS, ingest

    spark = _session(settings, spark, "bronze")
    lake = Lake(spark, str(settings.lake_uri))
    run_id = run_id or new_run_id("bronze")
    t0 = time.perf_counter()
    s3 = None if settings.lake_is_local else settings.s3
    result = ingest(spark, lake, Path(raw_dir or settings.raw_dir), run_id, etl=settings.etl, s3=s3)
    manifest = result.manifest
    contracts = gates.contract_by_table()
    checks = []
    for table, path in result.tables.items():
        files = [v for v in manifest["files"].values() if v["table"] == table]
        expected = sum(v["rows_in"] - v["rows_quarantined"] for v in files)
        accepted = spark.read.parquet(path).filter(F.col(STATUS) == "accepted")
        checks.append((table, accepted, gates.bronze_rules(contracts[table], expected)))
    _gate_all(lake, "bronze", run_id, manifest, checks, settings.gx_root)
    manifest["seconds_total"] = round(time.perf_counter() - t0, 2)
    lake.publish("bronze", run_id, manifest)
    return manifest


def run_silver(
    settings: Settings, bronze_run: str | None = None, run_id: str | None = None, spark: SparkSession | None = None
) -> dict[str, Any]:
    """Build silver from a published bronze run (default: the latest), gate it, publish it."""
    from spanishgas.etl.silver import ConflictingDelivery, build_silver

    spark = _session(settings, spark, "silver")
    lake = Lake(spark, str(settings.lake_uri))
    bronze_run = bronze_run or lake.latest_run("bronze")
    run_id = run_id or new_run_id("silver")
    t0 = time.perf_counter()
    s3 = None if settings.lake_is_local else settings.s3
    try:
        result = build_silver(
            spark, lake, bronze_run, run_id, s3=s3, max_conflicting_share=settings.etl.max_conflicting_share
        )
    except ConflictingDelivery as exc:
        # recorded for the data-quality history; the run is never published
        failed = {"layer": "silver", "run_id": run_id, "bronze_run": bronze_run, "status": "failed", "error": str(exc)}
        lake.write_manifest("silver", run_id, failed)
        raise
    manifest = result.manifest
    checks = [(table, spark.read.parquet(path), gates.silver_rules(table)) for table, path in result.tables.items()]
    _gate_all(lake, "silver", run_id, manifest, checks, settings.gx_root)
    manifest["seconds_total"] = round(time.perf_counter() - t0, 2)
    lake.publish("silver", run_id, manifest)
    return manifest


def run_gold(
    settings: Settings, silver_run: str | None = None, run_id: str | None = None, spark: SparkSession | None = None
) -> dict[str, Any]:
    """Build gold from a published silver run (default: the latest), gate it, publish it."""
    from spanishgas.etl.gold import build_gold

    spark = _session(settings, spark, "gold")
    lake = Lake(spark, str(settings.lake_uri))
    silver_run = silver_run or lake.latest_run("silver")
    run_id = run_id or new_run_id("gold")
    t0 = time.perf_counter()
    result = build_gold(spark, lake, silver_run, run_id, horizon_days=settings.label_horizon_days)
    manifest = result.manifest
    names = feature_names()
    checks = []
    for table, path in result.tables.items():
        df = spark.read.parquet(path)
        if set(names) <= set(df.columns):
            df = gates.with_missing_feature_count(df, names)
        checks.append((table, df, gates.gold_rules(table)))
    _gate_all(lake, "gold", run_id, manifest, checks, settings.gx_root)
    manifest["seconds_total"] = round(time.perf_counter() - t0, 2)
    lake.publish("gold", run_id, manifest)
    return manifest


def run_layer(
    layer: str,
    settings: Settings,
    *,
    raw_dir: Path | None = None,
    input_run: str | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Run one layer by name (what the CLI and the spark-submit entrypoints call)."""
    if layer == "bronze":
        return run_bronze(settings, raw_dir=raw_dir, run_id=run_id)
    if layer == "silver":
        return run_silver(settings, bronze_run=input_run, run_id=run_id)
    if layer == "gold":
        return run_gold(settings, silver_run=input_run, run_id=run_id)
    raise ValueError(f"unknown layer {layer!r}")


def layer_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """The parts of a run manifest a person wants to see after a stage."""
    keys = ("layer", "run_id", "bronze_run", "silver_run", "status", "rows", "quarantined_by_reason", "tables")
    out = {k: manifest[k] for k in keys if k in manifest}
    files = manifest.get("files")
    if isinstance(files, dict):
        out["files"] = {
            name: {k: v[k] for k in ("rows_in", "rows_accepted", "rows_quarantined", "quarantined_by_reason")}
            for name, v in files.items()
        }
    return out


def layer_errors() -> tuple[type[Exception], ...]:
    """Failures that mean "nothing published" (bad input, a failed gate, a lost server), reported without a
    traceback: every error the platform raises on purpose."""
    from spanishgas.errors import PlatformError

    return (PlatformError,)
