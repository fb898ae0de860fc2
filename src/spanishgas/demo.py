"""The demo: every stage that exists, end to end, on embedded defaults (local profile, no servers)."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

from rich.console import Console

from spanishgas.generator import GeneratorConfig, generate


def run_demo(customers: int, workdir: Path, console: Console) -> dict[str, Path]:
    """Generate a synthetic delivery and run the downstream stages on it; return where outputs are."""
    t0 = time.perf_counter()
    raw, truth = workdir / "raw", workdir / "truth"
    console.rule("1/1 generate a synthetic delivery")
    cfg = GeneratorConfig(
        customers=customers, start=date(2023, 1, 1), end=date(2024, 12, 31), out_dir=raw, truth_dir=truth
    )
    report = generate(cfg, overwrite=True)
    console.print(
        f"wrote {len(report.files)} raw files for {report.customers_delivered:,} customers ({report.seconds} s)"
    )
    outputs = {"raw files": raw, "ground truth": truth}
    console.rule(f"demo finished in {time.perf_counter() - t0:.1f} s")
    for name, path in outputs.items():
        console.print(f"{name:>14}: {path.resolve()}")
    return outputs
