"""The analyst app on the session's served world (a champion, segments, published scores, a monitoring
run): every page with Streamlit's AppTest (widgets change what is shown; empty and no-champion states say
so; the sign-in gate), then the real thing: `streamlit run` on a loopback port, every page opened in
headless Chromium (Debian's, driven by Playwright), no exception shown, a screenshot of each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spanishgas.settings import Settings
from tests.conftest import free_port, require_program, wait_for_http
from tests.integration.conftest import settings_env

REPO = Path(__file__).parents[2]
APP = REPO / "dashboard" / "app.py"
PAGES = {
    "pages/overview.py": "",
    "pages/at_risk.py": "at-risk",
    "pages/customer.py": "customer",
    "pages/plan.py": "plan",
    "pages/segments.py": "segments",
    "pages/model.py": "model",
    "pages/drift.py": "drift",
}
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def world(served: dict[str, Any]) -> dict[str, Any]:
    """The served world with a monitoring run (the drift page's input)."""
    from spanishgas.monitoring.job import run_monitor

    run_monitor(served["settings"], push=False)
    return served


def _app(page: str | None = None) -> Any:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    if page:
        at.switch_page(page).run()
    return at


def _no_exception(at: Any) -> None:
    assert not at.exception, [e.message for e in at.exception]


def test_every_page_renders_with_the_run_ids_in_its_header(world: dict[str, Any], app_env: Any) -> None:
    app_env(settings_env(world["settings"]))
    batch = world["batch"]
    for page in PAGES:
        at = _app(page)
        _no_exception(at)
        header = " ".join(c.value for c in at.caption)
        assert f"model v{world['version']}" in header and "open, loopback only" in header, (page, header)
        assert str(batch["gold_run_id"].iloc[0]) in header


def test_the_overview_reads_the_churn_history_the_scoring_run_published(world: dict[str, Any], app_env: Any) -> None:
    """The batch job publishes observed vs expected churn by month with its scores, so the overview draws
    it without scoring the history; the table is what the model gives the matured months now."""
    from pandas.testing import assert_frame_equal

    from spanishgas.analyst.book import published_history, run_keys
    from spanishgas.model.registry import load_version
    from spanishgas.retention.history import churn_history

    settings = world["settings"]
    keys = run_keys(settings)
    published = published_history(settings, keys.scores_run)
    assert published is not None and len(published) > 1
    now = churn_history(settings, keys.gold_run, load_version(settings, version=world["version"]).model)
    assert_frame_equal(published, now)
    app_env(settings_env(settings))
    at = _app("pages/overview.py")
    _no_exception(at)
    assert any(f"({len(published)} months)" in c.value for c in at.caption)
    # the churn chart draws those months: an observed and an expected rate each, as published
    import pyarrow as pa

    tiers, churn = at.get("vega_lite_chart")
    drawn = pa.ipc.open_stream(churn.proto.data.data).read_all().to_pandas()
    assert json.loads(churn.proto.spec)["encoding"]["y"]["field"] == "rate"
    observed = drawn[drawn["series"] == "observed"].set_index("month")["rate"]
    assert observed.tolist() == published["observed_rate"].tolist() and len(drawn) == 2 * len(published)
    assert pa.ipc.open_stream(tiers.proto.data.data).read_all().column("tier").to_pylist() == [
        "critical",
        "high",
        "medium",
        "low",
    ]


def test_the_start_up_reads_leave_the_pages_nothing_to_read_again(
    world: dict[str, Any], app_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app's start-up hook fills the pages' own caches (`common.prime`, in a thread without a page):
    with every source it read made unreadable afterwards, the pages still render, from those caches."""
    app_env(settings_env(world["settings"]))
    monkeypatch.syspath_prepend(str(APP.parent))
    import common

    read = common.prime()
    assert {"scored book", "churn model", "segment model", "churn history", "matured labels", "test curves"} <= set(
        read
    ), read

    def unreadable(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("read again although the start-up filled its cache")

    for target in (
        "spanishgas.lake_reader.LakeReader.read_table",
        "spanishgas.model.registry.load_version",
        "spanishgas.retention.job.load_segments",
        "spanishgas.analyst.health.compare_on_test_rows",
        "spanishgas.analyst.health.version_report",
        "spanishgas.analyst.health.importance",
        "spanishgas.analyst.health.model_card",
        "spanishgas.analyst.health.monitoring_history",
    ):
        monkeypatch.setattr(target, unreadable)
    for page in PAGES:
        if page != "pages/customer.py":  # reads one customer's history as asked, never cached
            _no_exception(_app(page))


def test_a_filter_narrows_the_at_risk_list_and_the_csv_follows(world: dict[str, Any], app_env: Any) -> None:
    app_env(settings_env(world["settings"]))
    at = _app("pages/at_risk.py")
    everyone = at.dataframe[0].value
    tiers = at.multiselect(key="tiers")
    assert len(everyone) > 0 and set(everyone["risk_tier"]) <= set(tiers.value)
    tiers.set_value(["critical"]).run()
    narrowed = at.dataframe[0].value
    assert len(narrowed) < len(everyone) and set(narrowed["risk_tier"]) <= {"critical"}
    at.radio(key="sort_by").set_value("margin at risk").run()
    by_margin = at.dataframe[0].value["expected_monthly_loss_eur"].to_numpy()
    assert (by_margin[:-1] >= by_margin[1:]).all()
    assert at.get("download_button")  # the campaign's CSV of what is shown
    segment = str(everyone["segment_name"].iloc[0])
    at.multiselect(key="segments").set_value([segment]).run()
    assert set(at.dataframe[0].value["segment_name"]) == {segment}
    assert all(isinstance(r, str) and r for r in narrowed["top_reasons"])


def test_the_budget_changes_the_plan(world: dict[str, Any], app_env: Any) -> None:
    app_env(settings_env(world["settings"]))
    at = _app("pages/plan.py")

    def cost() -> float:
        return float(at.dataframe[0].value.loc["this plan", "cost_eur"])

    at.slider(key="budget").set_value(0).run()
    assert cost() == 0.0
    at.slider(key="budget").set_value(100_000).run()
    generous = cost()
    at.toggle(key="no_budget").set_value(True).run()
    rules = at.dataframe[0].value
    # without a budget the plan is every offer that pays for itself: the rules-only policy's customers
    offered = rules["customers_offered"]
    assert generous > 0.0 and offered["this plan"] >= offered["rules only"]
    _no_exception(at)


def test_a_customer_lookup_shows_reasons_and_answers_a_what_if(
    world: dict[str, Any], app_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_env(settings_env(world["settings"]))
    at = _app("pages/customer.py")
    _no_exception(at)
    customer = at.text_input(key="customer_id").value
    expected = world["batch"].loc[customer]
    assert at.metric[0].value == f"{expected['churn_probability']:.1%}"
    assert "answered in process" in " ".join(c.value for c in at.caption)  # no API configured
    reasons = [m.value for m in at.markdown if m.value.startswith("- ")]
    assert reasons and reasons[0] == f"- {expected['top_reason']}"
    at.checkbox(key="renewal_signed").check().run()
    _no_exception(at)
    assert any(m.label == "Churn probability" and m.delta for m in at.metric)  # the what-if's answer

    def unreadable(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the customer's gold rows read again on a what-if rerun")

    with monkeypatch.context() as patched:
        patched.setattr("spanishgas.lake_reader.LakeReader.read_table", unreadable)
        at.slider(key="price_change").set_value(5).run()  # another what-if: history and features cached
        _no_exception(at)
    at.text_input(key="customer_id").input("C99999").run()
    assert any("Cannot score 'C99999'" in w.value for w in at.warning)


def test_an_unreachable_api_falls_back_to_in_process_scoring_and_says_so(world: dict[str, Any], app_env: Any) -> None:
    app_env({**settings_env(world["settings"]), "SPANISHGAS_DASHBOARD__API_URL": f"http://127.0.0.1:{free_port()}"})
    at = _app("pages/customer.py")
    _no_exception(at)
    assert any("did not answer" in w.value and "answered in process" in w.value for w in at.warning)
    assert at.metric[0].value.endswith("%")


def test_the_customer_page_asks_the_scoring_api_when_one_is_configured(
    world: dict[str, Any], app_env: Any, tmp_path: Path
) -> None:
    """`spanishgas serve` on the same stores; the page's answer comes from it (GET and POST /score)."""
    import json

    port, key = free_port(), "dashboard-key"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPANISHGAS_")} | settings_env(world["settings"])
    env["SPANISHGAS_API__API_KEYS"] = json.dumps([key])
    binary = str(Path(sys.executable).with_name("spanishgas"))
    with (tmp_path / "api.log").open("w") as log:
        api = subprocess.Popen([binary, "serve", "--port", str(port)], cwd=REPO, env=env, stdout=log, stderr=log)
        try:
            wait_for_http(f"http://127.0.0.1:{port}/ready", 120)
            app_env(
                settings_env(world["settings"])
                | {"SPANISHGAS_DASHBOARD__API_URL": f"http://127.0.0.1:{port}", "SPANISHGAS_DASHBOARD__API_KEY": key}
            )
            at = _app("pages/customer.py")
            _no_exception(at)
            assert "answered by the scoring API" in " ".join(c.value for c in at.caption)
            expected = world["batch"].loc[at.text_input(key="customer_id").value]
            assert at.metric[0].value == f"{expected['churn_probability']:.1%}"
            at.checkbox(key="complaint_resolved").check().run()
            _no_exception(at)
            assert not at.warning and any(m.label == "Churn probability" for m in at.metric[4:])
        finally:
            api.terminate()
            api.wait(timeout=30)


def test_an_empty_platform_says_what_to_run(tmp_path: Path, app_env: Any) -> None:
    empty = Settings(profile="local", data_root=tmp_path / "data", gx_root=tmp_path / "gx")
    app_env(settings_env(empty))
    messages = {}
    for page in PAGES:
        at = _app(page)
        _no_exception(at)
        messages[page] = " ".join(e.value for e in [*at.warning, *at.info])
    for page in ("overview", "at_risk", "customer", "plan", "segments", "model"):
        assert "No champion model yet" in messages[f"pages/{page}.py"], page
    assert "No monitoring run yet" in messages["pages/drift.py"]


def test_a_champion_with_nothing_scored_yet_says_what_to_run(
    world: dict[str, Any], tmp_path: Path, app_env: Any
) -> None:
    """The registry has a champion, the lake no scoring run: the book's pages say to run the scoring."""
    app_env({**settings_env(world["settings"]), "SPANISHGAS_LAKE_URI": str(tmp_path / "lake")})
    for page in ("pages/overview.py", "pages/at_risk.py", "pages/plan.py", "pages/segments.py"):
        at = _app(page)
        _no_exception(at)
        assert any("No published scores yet" in e.value for e in at.info), page
        assert not at.dataframe and not at.metric, page


def test_sign_in_is_required_in_the_stack_profile(world: dict[str, Any], app_env: Any) -> None:
    env = {**settings_env(world["settings"]), "SPANISHGAS_DASHBOARD__REQUIRE_SIGN_IN": "true"}
    app_env(env)
    at = _app()
    assert any("no identity provider is configured" in e.value for e in at.error) and not at.dataframe
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=120)
    at.secrets["auth"] = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "x"}
    at.run()
    assert [b.label for b in at.button] == ["Sign in"] and not at.metric  # nothing shown before signing in
    at.user = {"is_logged_in": True, "email": "analyst@spanishgas.example"}  # what Streamlit sets after OIDC
    at.run()
    _no_exception(at)
    assert "signed in as analyst@spanishgas.example" in " ".join(c.value for c in at.caption) and at.metric


@pytest.fixture(scope="module")
def running_app(world: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`streamlit run` (the command `spanishgas dashboard` runs) on a free loopback port: its address and
    its log."""
    from spanishgas.analyst.app import dashboard_command

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPANISHGAS_")} | settings_env(world["settings"])
    log_path = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    log = log_path.open("w")
    command = dashboard_command(Settings(), "127.0.0.1", port)
    assert command[:4] == [sys.executable, "-m", "streamlit", "run"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/_stcore/health", 60)
        yield url, log_path
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def test_every_page_in_a_real_browser(running_app: tuple[str, Path], tmp_path: Path) -> None:
    """Each page opened in headless Chromium until the script stops running and every chart and table is
    drawn; no exception on screen; a screenshot of the whole page (the window made as tall as the page) to
    ``SPANISHGAS_SCREENSHOTS`` when set (docs/images). The app was served as `st.App` and its start-up
    hook warmed the process."""
    from playwright.sync_api import expect, sync_playwright

    from spanishgas.analyst.app import PAGE_DRAWN, PAGE_HEIGHT, PAGE_IDLE

    url, log = running_app
    chromium = require_program("chromium")
    out = Path(os.environ.get("SPANISHGAS_SCREENSHOTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1600, "height": 1100})
        for script, path in PAGES.items():
            page.set_viewport_size({"width": 1600, "height": 1100})
            page.goto(f"{url}/{path}")
            expect(page.locator(PAGE_IDLE)).to_be_attached(timeout=120_000)
            page.wait_for_function(PAGE_DRAWN, timeout=120_000)
            exceptions = page.locator('[data-testid="stException"]')
            assert exceptions.count() == 0, (script, exceptions.first.inner_text())
            height = max(1100, int(page.evaluate(PAGE_HEIGHT)) + 40)
            page.set_viewport_size({"width": 1600, "height": height})
            page.wait_for_function(PAGE_DRAWN, timeout=120_000)  # charts redraw at the new size
            page.wait_for_timeout(300)
            name = Path(script).stem.replace("_", "-")
            page.screenshot(path=str(out / f"dashboard-{name}.png"), full_page=True)
        browser.close()
    assert len(list(out.glob("dashboard-*.png"))) == len(PAGES)
    assert "analyst app warmed up in" in log.read_text()
    assert "(read: scored book, " in log.read_text()  # the pages' caches were filled at start-up
