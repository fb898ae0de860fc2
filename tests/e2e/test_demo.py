"""`make demo` runs every stage end to end on embedded defaults and says where its outputs are."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from rich.console import Console

from spanishgas.demo import run_demo
from spanishgas.settings import Settings

# Secrets configured for the demo run: none may appear in its logs, its console or any file it writes.
SECRETS = {
    "api": "api-key-never-logged-5f1c",
    "postgres": "pg-password-never-logged-77a2",
    "redis": "redis-password-never-logged-c3d9",
    "s3": "s3-secret-never-logged-e810",
    "dashboard": "dashboard-key-never-logged-0b4e",
}


def _with_secrets(gx_root: Path) -> Settings:
    return Settings.model_validate(
        {
            "gx_root": gx_root,
            "api": {"api_keys": [SECRETS["api"]]},
            "postgres": {"password": SECRETS["postgres"]},
            "redis": {"password": SECRETS["redis"]},
            "s3": {"secret_access_key": SECRETS["s3"]},
            "dashboard": {"api_key": SECRETS["dashboard"]},
        }
    )


def _leaks(text: str) -> list[str]:
    return [name for name, secret in SECRETS.items() if secret in text]


@pytest.mark.e2e
@pytest.mark.spark
@pytest.mark.slow
def test_demo_publishes_every_layer(
    spark, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    settings = _with_secrets(tmp_path / "great_expectations")
    console = Console(record=True, width=200)
    with caplog.at_level(logging.DEBUG):
        outputs = run_demo(customers=400, workdir=tmp_path / "demo", console=console, settings=settings)
    for layer in ("bronze", "silver", "gold"):
        assert list((outputs["lake"] / layer / "_published").glob("*.json")), layer
    assert outputs["data docs"].exists()
    assert (outputs["feature store"] / "online.db").exists()
    assert outputs["model card"].read_text().startswith("# Model card")
    # the utility's floor is out of reach on synthetic data, and the demo shows the gate saying so
    text = console.export_text()  # export clears the record: read it once
    assert "cannot support that floor" in text
    assert "champion: version" in text or "champion assigned without the gate" in text
    assert outputs["scores"].is_file()  # every step ran, the last one included
    # the story: who is at risk, what pays and why the rest does not, one customer in both languages
    assert re.search(r"[\d,]+ of [\d,]+ customers are at risk", text)
    assert "offers pay for themselves" in text
    assert "as GET /score/C" in text and "  [es] " in text and "  [en] " in text  # the API's service answered
    assert re.search(r"\+ (note the call|anote la llamada)", text)  # what the agent may do at no cost
    assert "spanishgas serve" in text and "?lang=en" in text and "spanishgas dashboard" in text
    assert ": not known" not in text and not re.search(r"^    - .*: -?[\d.]+$", text, re.MULTILINE)
    assert "watched features on 2025-01-01" in text and "retrain" in text  # the monitor ran and decided
    assert (outputs["monitoring"] / "feature_drift.parquet").is_file()
    assert "demo finished" in text and str(outputs["lake"].resolve()) in text
    # no configured secret in the console, any log record, the process output or any file written
    assert _leaks(text) == [] and _leaks(caplog.text) == []
    captured = capfd.readouterr()
    assert _leaks(captured.out + captured.err) == []
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.stat().st_size < 50 * 1024**2]
    assert written
    leaked = {str(p.relative_to(tmp_path)): _leaks(p.read_bytes().decode("utf-8", "replace")) for p in written}
    assert {path: names for path, names in leaked.items() if names} == {}
