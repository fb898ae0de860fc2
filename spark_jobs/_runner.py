"""Shared argument handling of the spark-submit entrypoints (kept here so each job stays two lines)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(layer: str, argv: list[str] | None = None) -> int:
    """Parse the job's arguments, run the layer stage, print its summary; exit 1 on failure."""
    from spanishgas.cli import layer_summary
    from spanishgas.etl import pipeline
    from spanishgas.etl.bronze import DeliveryError
    from spanishgas.lake import LakeError
    from spanishgas.quality.gates import GateFailed
    from spanishgas.settings import get_settings

    parser = argparse.ArgumentParser(prog=f"{layer}.py", description=f"SpanishGas {layer} job")
    parser.add_argument("--run-id")
    if layer == "bronze":
        parser.add_argument("--raw", type=Path)
    else:
        parser.add_argument("--input-run", help="published run of the layer below (default: latest)")
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        if layer == "bronze":
            manifest = pipeline.run_bronze(settings, raw_dir=args.raw, run_id=args.run_id)
        elif layer == "silver":
            manifest = pipeline.run_silver(settings, bronze_run=args.input_run, run_id=args.run_id)
        else:
            manifest = pipeline.run_gold(settings, silver_run=args.input_run, run_id=args.run_id)
    except (DeliveryError, GateFailed, LakeError) as exc:
        print(f"{layer} failed, nothing published: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(layer_summary(manifest), indent=2))
    return 0
