"""The real scheduler, unattended: Airflow's api-server, scheduler, dag-processor and triggerer on
loopback (LocalExecutor, metadata in Postgres) run the lifecycle from Asset events alone.

The platform starts as it would stand in production: a champion trained on last month's gold. A delivery
dropped into the landing folder must run medallion -> features -> scoring -> monitoring with nobody
touching Airflow; the same world continued with a price shock, triggered through the REST API the way the
UI's trigger form does (``raw_dir`` in the run's conf), must end in the retraining DAG because of drift.
Then headless Chromium (Debian's, driven by Playwright) photographs the UI's DAG list and a grid view.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from spanishgas.orchestration.tasks import spark_connection
from spanishgas.settings import Settings
from tests.conftest import free_port, history_world, require_program
from tests.e2e.airflow_services import AirflowServices

REPO = Path(__file__).parents[2]
# the services, two deliveries through three Spark jobs each and a retrain: about ten minutes here
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(2400)]

LIFECYCLE = ("spanishgas_medallion", "spanishgas_features", "spanishgas_scoring", "spanishgas_monitoring")
# the training DAG stays paused: its monthly schedule would start a run the moment it is unpaused
UNPAUSED = ("spanishgas_landing", *LIFECYCLE, "spanishgas_retraining")
DRIFT_REASONS = {"feature_drift", "prediction_drift"}
STAGE_SECONDS = 900  # a bound per run, far above what small data take (docs/benchmarks.md)


@pytest.fixture(scope="module")
def platform(history_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A platform folder whose data hold last month's gold (the session's 24-month history world), its
    features and a champion trained on them as the monitoring tests train theirs."""
    from spanishgas.feature_store.offline import load_offline
    from spanishgas.feature_store.store import apply, get_store
    from spanishgas.model.registry import assign_champion
    from spanishgas.model.train import train

    platform = tmp_path_factory.mktemp("scheduled") / "platform"
    for folder in ("dags", "spark_jobs", "feature_repo"):
        shutil.copytree(REPO / folder, platform / folder, ignore=shutil.ignore_patterns("__pycache__"))
    data = platform / "data"
    shutil.copytree(history_lake / "lake" / "gold", data / "lake" / "gold")
    settings = Settings(profile="local", data_root=data, gx_root=platform / "great_expectations")
    load_offline(settings)
    apply(settings, get_store(settings))
    report = train(settings, "E5", 4)
    assign_champion(settings, report.model_version, reason="the platform's champion before this delivery")
    return platform


@pytest.fixture(scope="module")
def deliveries(history_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """This month's delivery (the history world as delivered: the one the champion knows) and the next,
    the same world continued a month under the generator's price shock (which the monitoring tests show
    the monitor must answer with a retrain)."""
    root = tmp_path_factory.mktemp("deliveries")
    shocked, _ = history_world(root, date(2025, 1, 31), "price_shock")
    # a quote and spaces in the folder must not break the spark-submit command line
    named = shocked.rename(shocked.with_name("drop 'Jan' 2025"))
    return {"current": history_lake / "raw", "shocked": named}


@pytest.fixture(scope="module")
def airflow(platform: Path, postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServices]:
    """The four Airflow services on a metadata database of their own."""
    import psycopg2

    database = f"spanishgas_airflow_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(postgres_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {database}")
    params = dict(part.split("=", 1) for part in postgres_dsn.split())
    url = f"postgresql+psycopg2://{params['user']}@{params['host']}:{params['port']}/{database}"
    services = AirflowServices.configure(
        tmp_path_factory.mktemp("airflow-home"),
        platform / "dags",
        url,
        free_port(),
        {
            "AIRFLOW_CONN_SPARK_DEFAULT": spark_connection(Settings()),  # local[*]
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPANISHGAS_SPARK__DRIVER_MEMORY": "2g",
            "SPANISHGAS_ORCHESTRATION__POKE_INTERVAL_S": "2",
            "SPANISHGAS_ORCHESTRATION__TASK_RETRIES": "0",  # a failure shows at once, not after retries
            "SPANISHGAS_MODEL__TRIALS": "2",
            # the monitoring tests' settings for a 1,200-customer book (tests/e2e/test_monitoring.py)
            "SPANISHGAS_MONITORING__INTAKE_MONTHS": "4",
            "SPANISHGAS_MONITORING__MIN_COHORT_CHURNERS": "20",
            # a few hundred labelled churners cannot reach the production floor; the gate's other rules hold
            "SPANISHGAS_MODEL__PR_AUC_FLOOR": "0.0",
        },
    )
    try:
        services.start()
        yield services
    finally:
        services.stop()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.close()


def _landing_sensor_deferred(airflow: AirflowServices) -> bool:
    runs = airflow.runs("spanishgas_landing")
    return (
        bool(runs)
        and airflow.task_states("spanishgas_landing", runs[-1]["dag_run_id"]).get("wait_for_delivery") == "deferred"
    )


def _follow(airflow: AirflowServices, number: int, medallion_by: str, dag_ids: tuple[str, ...]) -> dict[str, dict]:
    """Wait for run ``number`` of each DAG in turn, each successful: the medallion's started by the landing
    DAG (``operator_triggered``) or through the API (``manual``), every other one by an Asset event (the
    daily monitoring run the scheduler starts on unpausing is not one of them)."""
    return {
        dag_id: airflow.finished_run(
            dag_id, medallion_by if dag_id == "spanishgas_medallion" else "asset_triggered", number, STAGE_SECONDS
        )
        for dag_id in dag_ids
    }


def test_the_scheduler_runs_the_lifecycle_from_asset_events_alone(
    airflow: AirflowServices, platform: Path, deliveries: dict[str, Path], tmp_path: Path
) -> None:
    imports = airflow.api("GET", "/importErrors")
    assert imports["total_entries"] == 0, imports
    airflow.wait(lambda: airflow.api("GET", "/dags", params={"limit": 100})["total_entries"] == 7, 120, "7 DAGs")
    for dag_id in UNPAUSED:  # what a data engineer does in the UI on the first day
        airflow.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    # 1. A delivery dropped into the landing folder; nobody touches Airflow until monitoring is done.
    airflow.wait(lambda: _landing_sensor_deferred(airflow), 180, "the landing sensor to wait deferred")
    delivery = platform / "data" / "landing" / "2024-12"
    shutil.copytree(deliveries["current"], delivery, copy_function=os.link)
    (delivery / "_DELIVERY_COMPLETE").touch()  # the deliverer writes the marker last
    dropped = time.monotonic()
    first = _follow(airflow, 1, "operator_triggered", LIFECYCLE)
    first_chain = time.monotonic() - dropped
    assert first["spanishgas_medallion"]["conf"] == {"raw_dir": str(delivery.resolve())}  # from the landing DAG
    scoring = first["spanishgas_scoring"]
    assert set(airflow.task_states("spanishgas_scoring", scoring["dag_run_id"]).values()) == {"success"}
    summary = airflow.xcom("spanishgas_monitoring", first["spanishgas_monitoring"]["dag_run_id"], "measure")
    assert not DRIFT_REASONS & set(summary["decision"]["reasons"]), summary["decision"]
    assert airflow.runs("spanishgas_retraining") == []

    # 2. The world continued under a price shock, run from the REST API as the UI's trigger form does.
    triggered = time.monotonic()
    airflow.api(
        "POST",
        "/dags/spanishgas_medallion/dagRuns",
        json={"logical_date": None, "conf": {"raw_dir": str(deliveries["shocked"])}, "note": "price-shock delivery"},
    )
    second = _follow(airflow, 1, "manual", LIFECYCLE[:1])  # the medallion's first run from the API
    second |= _follow(airflow, 2, "manual", LIFECYCLE[1:])
    second |= _follow(airflow, 1, "manual", ("spanishgas_retraining",))
    second_chain = time.monotonic() - triggered
    assert second["spanishgas_medallion"]["conf"] == {"raw_dir": str(deliveries["shocked"])}
    markers = (platform / "data" / "lake" / "bronze" / "_published").glob("*.json")
    published = [json.loads(marker.read_text()) for marker in markers]
    assert str(deliveries["shocked"].resolve()) in {m["raw_dir"] for m in published}  # the parameter reached the job
    events = airflow.api("GET", "/assets/events", params={"source_dag_id": "spanishgas_monitoring"})["asset_events"]
    assert len(events) == 1 and DRIFT_REASONS & set(events[0]["extra"]["reasons"]), events
    retraining = second["spanishgas_retraining"]
    states = airflow.task_states("spanishgas_retraining", retraining["dag_run_id"])
    assert states["read_request"] == states["new_data"] == states["retrain"] == "success", states
    request = airflow.xcom("spanishgas_retraining", retraining["dag_run_id"], "read_request")
    assert request["reasons"] == events[0]["extra"]["reasons"]
    outcome = airflow.xcom("spanishgas_retraining", retraining["dag_run_id"], "retrain")
    assert outcome["gold_run_id"] != first_gold_run(first, airflow)  # trained on the shocked delivery's gold

    timings = {"landing_to_monitoring_s": round(first_chain, 1), "rest_trigger_to_retraining_s": round(second_chain, 1)}
    (tmp_path / "chain_timings.json").write_text(json.dumps(timings))
    print(f"\nunattended chain on the 1,200-customer, 24-month delivery: {timings}")


def first_gold_run(first: dict[str, dict], airflow: AirflowServices) -> str:
    """The gold run the first delivery's features were loaded from."""
    summary = airflow.xcom("spanishgas_features", first["spanishgas_features"]["dag_run_id"], "load_apply_materialize")
    return str(summary["gold_run_id"])


def test_the_ui_shows_the_dags_and_their_runs(airflow: AirflowServices, tmp_path: Path) -> None:
    """Headless Chromium on the UI, signed in with the API's token: the DAG list and the medallion grid
    render with every DAG and no error; screenshots go to ``SPANISHGAS_SCREENSHOTS`` when set (docs/)."""
    from playwright.sync_api import sync_playwright

    chromium = require_program("chromium")
    out = Path(os.environ.get("SPANISHGAS_SCREENSHOTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-background-networking"])
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        context.add_cookies([{"name": "_token", "value": airflow.token, "url": airflow.url}])
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{airflow.url}/dags")
        for dag_id in UNPAUSED:
            page.get_by_text(dag_id, exact=True).first.wait_for(timeout=60_000)
        page.get_by_text("spanishgas_training", exact=True).first.wait_for(timeout=60_000)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(out / "airflow-dag-list.png"))
        page.goto(f"{airflow.url}/dags/spanishgas_medallion")
        page.get_by_text("bronze", exact=True).first.wait_for(timeout=60_000)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(out / "airflow-medallion-grid.png"))
        browser.close()
    assert not errors, errors
    assert (out / "airflow-dag-list.png").stat().st_size > 10_000
