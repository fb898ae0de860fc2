"""Data-quality trends from the lake's run manifests: rows in, quarantine share by reason, schema changes
reported by bronze, gate failures, per run (failed runs included: they are what ops look for)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from spanishgas.lake import LAYERS

if TYPE_CHECKING:
    from spanishgas.lake_reader import LakeReader

RUN_COLUMNS = [
    "layer",
    "run_id",
    "status",
    "published",
    "started_at",
    "finished_at",
    "seconds",
    "rows_in",
    "rows_quarantined",
    "quarantine_share",
    "gate_failures",
    "schema_changes",
    "rows_dropped_duplicate",
    "values_mapped_unknown",
]
QUARANTINE_COLUMNS = ["layer", "run_id", "source", "reason", "rows", "share"]


def _seconds(manifest: dict[str, Any]) -> float | None:
    if "seconds_total" in manifest:
        return float(manifest["seconds_total"])
    try:
        started = datetime.fromisoformat(manifest["started_at"])
        return (datetime.fromisoformat(manifest["finished_at"]) - started).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None


def schema_changes(files: dict[str, Any], previous: dict[str, Any] | None) -> list[str]:
    """Columns a bronze run's files delivered beyond or short of the contract, and columns that changed
    since the previous bronze run of the same file."""
    changes = []
    for name, info in sorted(files.items()):
        for column in info.get("columns_ignored", []):
            changes.append(f"{name}: extra column {column} (ignored)")
        for column in info.get("columns_absent", []):
            changes.append(f"{name}: optional column {column} absent")
        before = (previous or {}).get(name, {}).get("columns")
        if before is not None and info.get("columns") is not None and before != info["columns"]:
            changes.append(f"{name}: columns changed since the previous run")
    return changes


def bronze_rows(manifest: dict[str, Any], previous: dict[str, Any] | None) -> tuple[dict, list[dict]]:
    """The run row and the quarantine rows of a bronze manifest."""
    files = manifest.get("files", {})
    rows_in = sum(int(f.get("rows_in", 0)) for f in files.values())
    quarantine = [
        {"source": name, "reason": reason, "rows": int(n), "share": n / f["rows_in"] if f.get("rows_in") else 0.0}
        for name, f in files.items()
        for reason, n in f.get("quarantined_by_reason", {}).items()
    ]
    changes = schema_changes(files, previous)
    mapped = sum(int(c.get("rows", 0)) for f in files.values() for c in f.get("mapped_to_unknown", {}).values())
    row = {"rows_in": rows_in, "schema_changes": "; ".join(changes), "values_mapped_unknown": mapped}
    return row, quarantine


def silver_rows(manifest: dict[str, Any], bronze_accepted: dict[str, int]) -> tuple[dict, list[dict]]:
    """The run row and quarantine rows of a silver manifest (shares of the bronze rows each source had)."""
    quarantine = []
    for source, reasons in manifest.get("quarantined_by_reason", {}).items():
        base = bronze_accepted.get(source, 0)
        for reason, n in reasons.items():
            quarantine.append({"source": source, "reason": reason, "rows": int(n), "share": n / base if base else 0.0})
    dropped = sum(int(d.get("exact_duplicates_dropped", 0)) for d in manifest.get("duplicates", {}).values())
    row = {"rows_in": sum(bronze_accepted.values()) or None, "schema_changes": "", "rows_dropped_duplicate": dropped}
    return row, quarantine


def quality_tables(lake: LakeReader) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per run of bronze, silver and gold, and one per (run, source, quarantine reason)."""
    runs, quarantine = [], []
    previous_files: dict[str, Any] | None = None
    accepted_by_bronze: dict[str, dict[str, int]] = {}
    for layer in LAYERS:
        published = set(lake.published_runs(layer))
        for run_id in lake.run_ids(layer):
            manifest = lake.run_manifest(layer, run_id)
            if manifest is None:  # a run killed before it wrote anything: nothing was published either
                manifest = {"status": "incomplete"}
            if layer == "bronze":
                row, q = bronze_rows(manifest, previous_files)
                previous_files = manifest.get("files") or previous_files
                accepted: dict[str, int] = {}
                for f in manifest.get("files", {}).values():  # a table may come in several files (years)
                    if "table" in f:
                        accepted[f["table"]] = accepted.get(f["table"], 0) + int(f.get("rows_accepted", 0))
                accepted_by_bronze[run_id] = accepted
            elif layer == "silver":
                row, q = silver_rows(manifest, accepted_by_bronze.get(manifest.get("bronze_run", ""), {}))
            else:
                row, q = {"rows_in": None, "schema_changes": ""}, []
            quarantined = sum(r["rows"] for r in q)
            gates = manifest.get("gates", {})
            runs.append(
                {
                    "layer": layer,
                    "run_id": run_id,
                    "status": manifest.get("status", "published" if run_id in published else "unknown"),
                    "published": run_id in published,
                    "started_at": manifest.get("started_at"),
                    "finished_at": manifest.get("finished_at"),
                    "seconds": _seconds(manifest),
                    "rows_quarantined": quarantined,
                    "quarantine_share": quarantined / row["rows_in"] if row["rows_in"] else 0.0,
                    "gate_failures": sum(1 for g in gates.values() if not g.get("success", True)),
                    "rows_dropped_duplicate": 0,
                    "values_mapped_unknown": 0,
                    **row,
                }
            )
            quarantine += [{"layer": layer, "run_id": run_id, **r} for r in q]
    return pd.DataFrame(runs, columns=RUN_COLUMNS), pd.DataFrame(quarantine, columns=QUARANTINE_COLUMNS)
