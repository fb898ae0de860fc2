"""Starting the analyst app: `streamlit run dashboard/app.py` on the settings' address and port."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spanishgas.settings import Settings

DASHBOARD = Path(__file__).parents[3] / "dashboard"
APP = DASHBOARD / "app.py"
SERVER = DASHBOARD / "server.py"  # the same app with a start-up hook (warm_up_process)


def dashboard_command(settings: Settings, host: str | None = None, port: int | None = None) -> list[str]:
    """The command that serves the app (headless: no browser opened, no usage statistics sent, no
    developer menu)."""
    if not SERVER.is_file():
        raise FileNotFoundError(f"the analyst app is not at {SERVER}: run from a checkout of the platform")
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(SERVER),
        "--server.address",
        host or settings.dashboard.host,
        "--server.port",
        str(port or settings.dashboard.port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",  # no developer menu (rerun, deploy) for analysts
    ]


def app_url(settings: Settings, host: str | None = None, port: int | None = None) -> str:
    """Where the app answers."""
    return f"http://{host or settings.dashboard.host}:{port or settings.dashboard.port}"


def warm_up_process() -> None:
    """What the first page of a fresh process would otherwise wait for (measured 4 s of a 4.5 s first
    render at full scale): importing the model stack (MLflow, scikit-learn, XGBoost), opening the
    registry's store and reading the newest scored book, which every page starts from (handed over once
    to the first page's cache, keyed by its run id like any other read)."""
    import logging
    import time

    log = logging.getLogger(__name__)
    started = time.perf_counter()
    try:
        import importlib

        from spanishgas.analyst.book import read_book_ahead, run_keys
        from spanishgas.settings import get_settings

        # the modules the pages import, so the first page does not import them either
        for module in ("spanishgas.analyst.views", "spanishgas.analyst.health", "spanishgas.analyst.lookup"):
            importlib.import_module(module)
        settings = get_settings()
        read_book_ahead(settings, run_keys(settings).scores_run)
    except Exception as exc:  # a warm-up must never stop the app: the first page then pays as before
        log.warning("warm-up skipped: %s", exc)
        return
    print(f"analyst app warmed up in {time.perf_counter() - started:.1f} s", flush=True)
