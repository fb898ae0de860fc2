"""Starting the analyst app: `streamlit run dashboard/app.py` on the settings' address and port."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spanishgas.settings import Settings

DASHBOARD = Path(__file__).parents[3] / "dashboard"
APP = DASHBOARD / "app.py"
SERVER = DASHBOARD / "server.py"  # the same app with a start-up hook (warm_up_process)
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# For browser checks of the app (tests, benchmarks): the page's script has stopped and the app is
# connected; then every chart and table is drawn (the flag can flip before the charts are).
PAGE_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"][data-test-connection-state="CONNECTED"]'
PAGE_DRAWN = """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
        .every(e => e.querySelector('canvas, svg'))
    && [...document.querySelectorAll('[data-testid="stDataFrame"]')].every(e => e.querySelector('canvas'))"""
# The app scrolls inside its main section, not the document: a full-page picture needs its height.
PAGE_HEIGHT = """() => { const main = document.querySelector('[data-testid="stMain"]');
    return Math.ceil(main ? main.scrollHeight : document.body.scrollHeight) }"""


class OpenAppOffLoopback(ValueError):
    """The app would show every customer's data without sign-in on an address others can reach."""


def sign_in_required(settings: Settings) -> bool:
    """Sign-in is required in the stack profile unless the settings say otherwise."""
    if settings.dashboard.require_sign_in is None:
        return settings.profile == "stack"
    return settings.dashboard.require_sign_in


def dashboard_command(settings: Settings, host: str | None = None, port: int | None = None) -> list[str]:
    """The command that serves the app (headless: no browser opened, no usage statistics sent, no
    developer menu). Refuses an address off loopback while the app is open without sign-in (the local
    demo), since the header of every page says "loopback only"."""
    if not SERVER.is_file():
        raise FileNotFoundError(f"the analyst app is not at {SERVER}: run from a checkout of the platform")
    address = host or settings.dashboard.host
    if address not in LOOPBACK and not sign_in_required(settings):
        raise OpenAppOffLoopback(
            f"the app is open without sign-in here (profile {settings.profile}), so it listens on loopback only, "
            f"not {address}: set SPANISHGAS_DASHBOARD__REQUIRE_SIGN_IN=true with an identity provider in "
            "`.streamlit/secrets.toml` (docs/dashboard.md) to serve it to others"
        )
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(SERVER),
        "--server.address",
        address,
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


def warm_up_process(fill_caches: Callable[[], list[str]]) -> None:
    """What the first page of a fresh process would otherwise wait for (measured 4 s of a 4.5 s first
    render at full scale): importing the model stack (MLflow, scikit-learn, XGBoost) and Streamlit's chart
    library (Altair: 0.5 s of the first page drawn with `st.line_chart` and friends), then
    ``fill_caches``: the app's cached reads of the newest runs (the scored book every page starts from,
    the models, the test curves...), run here in the background instead of in the first analyst's page.
    Logs how long it took and what it read."""
    import logging
    import time

    log = logging.getLogger(__name__)
    started = time.perf_counter()
    quiet = _WarmUpThreadOnly()
    context_log = logging.getLogger(STREAMLIT_CONTEXT_LOGGER)
    context_log.addFilter(quiet)
    try:
        import importlib

        # the modules the pages import, so the first page does not import them either
        for module in ("spanishgas.analyst.views", "spanishgas.analyst.health", "spanishgas.analyst.lookup"):
            importlib.import_module(module)
        _draw_a_chart()
        read = fill_caches()
    except Exception as exc:  # a warm-up must never stop the app: the first page then pays as before
        log.warning("warm-up skipped: %s", exc)
        return
    finally:
        context_log.removeFilter(quiet)
    print(f"analyst app warmed up in {time.perf_counter() - started:.1f} s (read: {', '.join(read)})", flush=True)


# Streamlit warns, once per cached call, that a thread without a page's context called it: expected here.
STREAMLIT_CONTEXT_LOGGER = "streamlit.runtime.scriptrunner_utils.script_run_context"


class _WarmUpThreadOnly(logging.Filter):
    """Drops the warm-up thread's own records (and nobody else's)."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self.thread


def _draw_a_chart() -> None:
    """Import Altair, which Streamlit's built-in charts import on their first call, and turn one chart into
    its Vega-Lite spec, so the first page with a chart pays neither."""
    import altair as alt
    import pandas as pd

    alt.Chart(pd.DataFrame({"tier": ["high"], "customers": [1]})).mark_bar().encode(x="customers", y="tier").to_dict()
