"""Long stages report their steps: one log line each when nobody watches a terminal (Airflow task logs,
spark-submit output), a rich bar when someone does."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console

from spanishgas import progress

pytestmark = pytest.mark.unit


def test_without_a_terminal_each_step_is_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    progress.use_terminal(None)
    with caplog.at_level(logging.INFO, logger="spanishgas.progress"), progress.steps("bronze tables", 3) as step:
        for table in ("contracts", "prices", "consumption_hourly"):
            step(f"{table} written")
    lines = [r.getMessage() for r in caplog.records if r.name == "spanishgas.progress"]
    assert [line.split(" (")[0] for line in lines] == [
        "bronze tables 1/3: contracts written",
        "bronze tables 2/3: prices written",
        "bronze tables 3/3: consumption_hourly written",
    ]
    assert all(line.endswith(" s)") for line in lines)  # with the time since the stage began


def test_at_a_terminal_the_steps_draw_a_bar_and_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    out = io.StringIO()
    progress.use_terminal(Console(file=out, force_terminal=True, width=100))
    try:
        with caplog.at_level(logging.INFO, logger="spanishgas.progress"), progress.steps("training trials", 2) as step:
            step("trial 0 validation PR-AUC 0.2100 (best 0.2100)")
            step("trial 1 pruned (best 0.2100)")
    finally:
        progress.use_terminal(None)
    assert "training trials: done" in out.getvalue() and "2/2" in out.getvalue()
    assert not [r for r in caplog.records if r.name == "spanishgas.progress"]


def test_the_command_line_logs_steps_when_not_at_a_terminal() -> None:
    """Typer's runner is not a terminal: the CLI's callback leaves log lines on, at INFO for the platform."""
    from typer.testing import CliRunner

    from spanishgas.cli import app

    result = CliRunner().invoke(app, ["contracts"])
    assert result.exit_code == 0, result.output
    assert progress._terminal is None
    assert logging.getLogger("spanishgas").getEffectiveLevel() == logging.INFO
