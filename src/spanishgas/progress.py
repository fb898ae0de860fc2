"""Progress of the long stages: a rich bar when a person watches a terminal, one log line per step
otherwise (Airflow task logs, spark-submit output, CI), so both can tell how far a stage has got.

The CLI turns the bar on (:func:`use_terminal`) when its standard error is a terminal; library code only
calls :func:`steps`, and nothing is drawn or logged at import time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

log = logging.getLogger("spanishgas.progress")
_terminal: Console | None = None


def use_terminal(console: Console | None) -> None:
    """Draw progress bars on ``console`` (None: log lines again)."""
    global _terminal
    _terminal = console


@contextmanager
def steps(stage: str, total: int | None = None) -> Iterator[Callable[[str], None]]:
    """Report a stage's steps: ``step("what was just done")`` after each one."""
    started = time.perf_counter()
    done = 0
    if _terminal is None:

        def log_step(label: str) -> None:
            nonlocal done
            done += 1
            counted = f"{done}/{total}" if total else str(done)
            log.info("%s %s: %s (%.1f s)", stage, counted, label, time.perf_counter() - started)

        yield log_step
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_terminal, transient=False) as bar:
        task = bar.add_task(stage, total=total)

        def bar_step(label: str) -> None:
            bar.update(task, advance=1, description=f"{stage}: {label}")

        yield bar_step
        bar.update(task, description=f"{stage}: done")


def configure_logging() -> None:
    """Send the platform's INFO lines (progress included) to standard error when nothing else set up
    logging (a command line, a spark-submit driver); Airflow's own handlers are left as they are."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("spanishgas").setLevel(logging.INFO)
