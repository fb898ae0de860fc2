"""Benchmark: the analyst app's render times on a full-scale world.

    SPANISHGAS_DATA_ROOT=data/bench .venv/bin/python benchmarks/bench_dashboard.py

Needs a scored world (``spanishgas score``/``recommend``, a monitoring run). Starts the scoring API
(``spanishgas serve``) and the app (``spanishgas dashboard``, pointed at the API) on free loopback ports,
then:

- every page's first render in headless Chromium, in a fresh app (cold caches, once its start-up warm-up
  has logged that it is done) and again in a new browser session (the caches other analysts already
  filled): navigation until the script has stopped and the browser has drawn every chart and table;
  then in a browser that opened every page the day before (a kept profile started again: its HTTP cache
  holds Streamlit's hashed front-end files), as an analyst's own browser does every morning; then, as an
  analyst moves through the app, each page opened from the sidebar in one session (the page's title
  shown, its script stopped, its charts drawn), the app freshly started again (cold) and once more (warm);
- a rerun after a widget change (at-risk tier filter, plan budget, customer what-if), timed as the
  script's rerun with Streamlit's AppTest in this process after one warm-up run;
- the customer page's API round trip (``GET /score/{id}``) over HTTP.

Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).parents[1]
PAGES = ["", "at-risk", "customer", "plan", "segments", "model", "drift"]
TITLES = {
    "": "Overview",
    "at-risk": "At-risk customers",
    "customer": "Customer",
    "plan": "Retention plan",
    "segments": "Segments",
    "model": "Model",
    "drift": "Drift and data quality",
}
KEY = "bench-key"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, seconds: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer")


def _rendered(page: Any) -> None:
    """Wait until the page's script has stopped and the browser has drawn its charts and tables."""
    from playwright.sync_api import expect

    from spanishgas.analyst.app import PAGE_DRAWN, PAGE_IDLE

    expect(page.locator(PAGE_IDLE)).to_be_attached(timeout=300_000)
    page.wait_for_function(PAGE_DRAWN, timeout=300_000)


def _browser_renders(url: str) -> dict[str, dict[str, float]]:
    from playwright.sync_api import sync_playwright

    out: dict[str, dict[str, float]] = {}
    with sync_playwright() as p:
        chromium = shutil.which("chromium") or "chromium"  # Debian's (scripts/services.sh tools)
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for visit in ("cold", "warm"):
            page = browser.new_context(viewport={"width": 1600, "height": 1100}).new_page()
            for path in PAGES:
                started = time.perf_counter()
                page.goto(f"{url}/{path}")
                _rendered(page)
                out.setdefault(path or "overview", {})[visit] = round(time.perf_counter() - started, 3)
        browser.close()
    return out


def _returning_renders(url: str, out: dict[str, dict[str, float]]) -> None:
    """Every page by URL as an analyst who opened the app the day before: a browser profile that visited
    every page once, closed and started again (its HTTP cache kept, as a desktop browser's is)."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="bench-browser-")
    try:
        with sync_playwright() as p:
            chromium = shutil.which("chromium") or "chromium"
            for visit in ("yesterday", "returning"):
                context = p.chromium.launch_persistent_context(
                    profile, executable_path=chromium, args=["--no-sandbox"], viewport={"width": 1600, "height": 1100}
                )
                page = context.new_page()
                for path in PAGES:
                    started = time.perf_counter()
                    page.goto(f"{url}/{path}")
                    _rendered(page)
                    if visit == "returning":
                        out.setdefault(path or "overview", {})[visit] = round(time.perf_counter() - started, 3)
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _sidebar_renders(url: str, visit: str, out: dict[str, dict[str, float]]) -> None:
    """Each page opened from the sidebar in one browser session, as an analyst moves through the app."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        chromium = shutil.which("chromium") or "chromium"
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_context(viewport={"width": 1600, "height": 1100}).new_page()
        started = time.perf_counter()
        page.goto(url)
        _rendered(page)
        out.setdefault("overview", {})[f"sidebar_{visit}"] = round(time.perf_counter() - started, 3)
        for path in PAGES[1:]:
            started = time.perf_counter()
            page.locator(f'[data-testid="stSidebarNav"] a[href$="/{path}"]').click()
            heading = page.get_by_role("heading", name=TITLES[path], exact=True, level=1)
            expect(heading).to_be_visible(timeout=300_000)
            _rendered(page)
            out.setdefault(path, {})[f"sidebar_{visit}"] = round(time.perf_counter() - started, 3)
        browser.close()


def _reruns() -> dict[str, float]:
    from streamlit.testing.v1 import AppTest

    def timed(page: str, change: object, repeat: int = 5) -> float:
        at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=300)
        at.run()
        at.switch_page(page).run()
        seconds = []
        for i in range(repeat):
            started = time.perf_counter()
            change(at, i)  # type: ignore[operator]
            seconds.append(time.perf_counter() - started)
        return round(statistics.median(seconds), 3)

    tiers = [["critical"], ["critical", "high"], ["high"], ["medium"], ["critical", "medium"]]
    return {
        "at-risk tier filter": timed(
            "pages/at_risk.py", lambda at, i: at.multiselect(key="tiers").set_value(tiers[i]).run()
        ),
        "plan budget": timed(
            "pages/plan.py", lambda at, i: at.slider(key="budget").set_value(10_000 + 5_000 * i).run()
        ),
        "customer what-if": timed(
            "pages/customer.py", lambda at, i: at.slider(key="price_change").set_value(5 + i).run()
        ),
    }


def _api_round_trip(api: str, customer: str, repeat: int = 50) -> dict[str, float]:
    import httpx

    with httpx.Client(headers={"X-API-Key": KEY}) as client:
        client.get(f"{api}/score/{customer}")
        seconds = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(f"{api}/score/{customer}").raise_for_status()
            seconds.append(time.perf_counter() - started)
    seconds.sort()
    return {"p50_s": round(seconds[len(seconds) // 2], 4), "p99_s": round(seconds[int(len(seconds) * 0.99) - 1], 4)}


def main() -> None:
    """Start the API and the app, measure, print the figures."""
    from spanishgas.analyst.book import load_book, run_keys
    from spanishgas.settings import get_settings

    settings = get_settings()
    book = load_book(settings, run_keys(settings).scores_run)
    customer = str(book.customers.sort_values("churn_probability").iloc[-1]["customer_id"])
    api_port, app_port = _port(), _port()
    api, app = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{app_port}"
    binary = str(Path(sys.executable).with_name("spanishgas"))
    env = {**os.environ, "SPANISHGAS_API__API_KEYS": json.dumps([KEY]), "SPANISHGAS_DASHBOARD__API_URL": api,
           "SPANISHGAS_DASHBOARD__API_KEY": KEY}  # fmt: skip
    os.environ.update({k: env[k] for k in ("SPANISHGAS_DASHBOARD__API_URL", "SPANISHGAS_DASHBOARD__API_KEY")})

    app_log = Path(tempfile.mkdtemp(prefix="bench-app-")) / "app.log"

    def start_app() -> subprocess.Popen[bytes]:
        return subprocess.Popen([binary, "dashboard", "--port", str(app_port)], env=env, cwd=REPO,
                                stdout=app_log.open("w"), stderr=subprocess.STDOUT)  # fmt: skip

    def warmed_up() -> float:
        """Seconds the app's start-up warm-up took (it logs them); the first analyst comes after it."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = re.search(r"analyst app warmed up in ([\d.]+) s", app_log.read_text())
            if found:
                return float(found.group(1))
            time.sleep(0.2)
        raise RuntimeError("the app did not log its warm-up")

    api_process = subprocess.Popen([binary, "serve", "--port", str(api_port)], env=env, cwd=REPO,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    app_process = start_app()
    try:
        _wait(f"{api}/ready", 300)
        _wait(f"{app}/_stcore/health")
        warm_up = [warmed_up()]
        renders = _browser_renders(app)
        _returning_renders(app, renders)
        app_process.terminate()
        app_process.wait(timeout=30)
        app_process = start_app()  # cold caches again, for the sidebar walk
        _wait(f"{app}/_stcore/health")
        warm_up.append(warmed_up())
        for visit in ("cold", "warm"):
            _sidebar_renders(app, visit, renders)
        figures = {
            "customers": len(book.customers),
            "app_warm_up_s": warm_up,
            "first_render_s": renders,
            "rerun_after_widget_change_s": _reruns(),
            "api_round_trip": _api_round_trip(api, customer),
        }
    finally:
        for process in (api_process, app_process):
            process.terminate()
            process.wait(timeout=30)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
