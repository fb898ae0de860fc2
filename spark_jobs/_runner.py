"""Shared argument handling of the spark-submit entrypoints (kept here so each job stays two lines)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def main(layer: str, argv: list[str] | None = None) -> int:
    """Parse the job's arguments, run the layer stage, print its summary; exit 1 on failure."""
    from spanishgas.etl import pipeline
    from spanishgas.progress import configure_logging
    from spanishgas.settings import get_settings

    configure_logging()  # one line per step in the driver's output (Airflow's task log)

    parser = argparse.ArgumentParser(prog=f"{layer}.py", description=f"SpanishGas {layer} job")
    parser.add_argument("--run-id")
    # spark-submit runs the driver wherever its caller stands (Airflow: a temporary folder): relative
    # settings and the raw folder are read from the platform folder, as for `spanishgas` run there.
    parser.add_argument("--home", type=Path, help="the platform folder (default: where the job is started)")
    if layer == "bronze":
        parser.add_argument("--raw", type=Path)
    else:
        parser.add_argument("--input-run", help="published run of the layer below (default: latest)")
    args = parser.parse_args(argv)
    if args.home:
        os.chdir(args.home)
    try:
        manifest = pipeline.run_layer(
            layer,
            get_settings(),
            raw_dir=getattr(args, "raw", None),
            input_run=getattr(args, "input_run", None),
            run_id=args.run_id,
        )
    except pipeline.layer_errors() as exc:
        print(f"{layer} failed, nothing published: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(pipeline.layer_summary(manifest), indent=2))
    return 0
