"""Starting the analyst app: `streamlit run dashboard/app.py` on the settings' address and port."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spanishgas.settings import Settings

APP = Path(__file__).parents[3] / "dashboard" / "app.py"


def dashboard_command(settings: Settings, host: str | None = None, port: int | None = None) -> list[str]:
    """The command that serves the app (headless: no browser opened, no usage statistics sent, no
    developer menu)."""
    if not APP.is_file():
        raise FileNotFoundError(f"the analyst app is not at {APP}: run from a checkout of the platform")
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
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
