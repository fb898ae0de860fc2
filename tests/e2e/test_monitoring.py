"""Monitoring on real data through the real pipeline: a 24-month delivery run through bronze, silver,
gold, the feature store, training, the registry and batch scoring; then the generator's own scenarios
continue that delivery, and the monitor must see what the scenario changed and nothing on a clean month.

The world has 1,200 customers; about ten join a month, so the intake slice is four months here (30 rows,
the smallest slice the monitor judges) where the default is three months of a 20,000-customer book.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from spanishgas.settings import MonitoringSettings, Settings
from tests.conftest import history_world

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.slow]

# what the shock moves at once: the last price against the months before it
PRICE_FEATURES = {"price_trend_3m", "price_increase_3m", "price_volatility_6m", "price_tier1_last"}
BUDGET = 3_000.0
# ~25 churners a monthly cohort here (500 at full scale): judged from 20; about ten customers join a month
MONITORING = MonitoringSettings(intake_months=4, min_cohort_churners=20)


def _etl(settings: Settings, raw: Path, spark: Any) -> None:
    from spanishgas.etl.pipeline import run_bronze, run_gold, run_silver

    run_bronze(settings, raw_dir=raw, spark=spark)
    run_silver(settings, spark=spark)
    run_gold(settings, spark=spark)


@pytest.fixture(scope="module")
def monitored(history_lake: Path) -> dict[str, Any]:
    """The delivery through every stage (the session's history lake), a champion with its reference, the
    latest scores and three backfilled scoring runs of the test period (whose labels have matured)."""
    from spanishgas.model.registry import assign_champion
    from spanishgas.model.train import train
    from spanishgas.retention.job import run_score, run_segment

    root = history_lake
    settings = Settings(
        profile="local",
        data_root=root,
        gx_root=root / "great_expectations",
        monitoring=MONITORING,
    )
    report = train(settings, "E5", 4)
    assign_champion(settings, report.model_version, "monitoring test")
    run_segment(settings)
    test_dates = [date.fromisoformat(d) for d in report.split["test"].split(" ")[0].split("..")]
    backfills = [run_score(settings, BUDGET, d) for d in sorted({test_dates[0], test_dates[1]})]
    latest = run_score(settings, BUDGET)
    return {"settings": settings, "report": report, "backfills": backfills, "latest": latest, "root": root}


@pytest.fixture(scope="module")
def clean_run(monitored: dict[str, Any]) -> Any:
    from spanishgas.monitoring.job import run_monitor

    return run_monitor(monitored["settings"], push=False)


def _continued(spark: Any, monitored: dict[str, Any], tmp: Path, scenario: str, end: date) -> Settings:
    """The same world continued past the delivery under a scenario, through the ETL into its own lake;
    the registry (and so the champion and its reference) stays the original's."""
    raw, _ = history_world(tmp, end, scenario)
    settings = monitored["settings"].model_copy(update={"lake_uri": str(tmp / "lake")})
    _etl(settings, raw, spark)
    return settings


def _alerts(run: Any, slice_name: str = "book") -> set[str]:
    drift = run.tables["feature_drift"]
    return set(drift.loc[(drift["level"] == "alert") & (drift["slice"] == slice_name), "feature"])


def test_a_clean_month_raises_no_alert_level_drift(clean_run: Any) -> None:
    drift = clean_run.tables["feature_drift"]
    assert clean_run.snapshot_date == date(2025, 1, 1)
    # the same calendar month of the reference, with every watched feature judged
    book = drift[drift["slice"] == "book"]
    assert set(book["reference_slice"]) == {"book:01"} and book["judged"].all()
    assert set(drift["slice"]) == {"book", "intake"}
    assert (drift["level"] != "alert").all(), drift.loc[drift["level"] == "alert", ["feature", "slice", "rules"]]
    assert clean_run.tables["prediction_drift"].iloc[0]["level"] != "alert"
    assert "feature_drift" not in clean_run.decision.reasons and "prediction_drift" not in clean_run.decision.reasons


def test_a_price_shock_raises_alert_level_drift_on_prices_and_the_score(
    spark: Any, monitored: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from spanishgas.monitoring.job import run_monitor

    settings = _continued(spark, monitored, tmp_path_factory.mktemp("price_shock"), "price_shock", date(2025, 1, 31))
    run = run_monitor(settings, push=False)
    assert run.snapshot_date == date(2025, 2, 1)
    alerted = _alerts(run)
    assert PRICE_FEATURES & alerted, alerted
    # and nothing but prices: a one-month shock leaves consumption, contacts and contracts where they were
    assert all("price" in name for name in alerted), alerted
    prediction = run.tables["prediction_drift"].iloc[0]
    assert prediction["level"] == "alert", prediction.to_dict()
    assert prediction["expected_churn_rate"] > prediction["reference_churn_rate"]
    assert run.decision.retrain and "prediction_drift" in run.decision.reasons


def test_a_new_channel_raises_alert_level_drift_on_the_sales_channel(
    spark: Any, monitored: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from spanishgas.monitoring.job import run_monitor

    settings = _continued(spark, monitored, tmp_path_factory.mktemp("new_channel"), "new_channel", date(2025, 4, 30))
    run = run_monitor(settings, push=False)
    intake = run.tables["feature_drift"].query("slice == 'intake'").set_index("feature")
    assert intake.loc["sales_channel", "judged"] and intake.loc["sales_channel", "level"] == "alert"
    assert intake.loc["is_channel_own_web", "level"] == "alert"
    # the book's channel mix has barely moved yet: the intake is where it shows
    assert "sales_channel" not in _alerts(run)


def test_matured_cohorts_equal_scikit_learn_on_the_same_rows(monitored: dict[str, Any], clean_run: Any) -> None:
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    from spanishgas.lake_reader import LakeReader

    cohorts = clean_run.tables["performance"]
    backfilled = {r.run_id for r in monitored["backfills"]}
    assert backfilled <= set(cohorts["scoring_run_id"])
    # the latest run's labels have not matured: it is no cohort
    assert monitored["latest"].run_id not in set(cohorts["scoring_run_id"])
    lake = LakeReader.from_settings(monitored["settings"])
    labels = lake.read_table("gold", lake.latest_run("gold"), "churn_training_dataset").to_pandas()
    labels["as_of_date"] = pd.to_datetime(labels["as_of_date"]).dt.date
    for result in monitored["backfills"]:
        row = cohorts.set_index("scoring_run_id").loc[result.run_id]
        joined = result.table.merge(labels[labels["as_of_date"] == row["snapshot_date"]], on="customer_id")
        y, p = joined["label"].to_numpy(), joined["churn_probability"].to_numpy()
        assert row["rows"] == len(joined) == result.rows
        assert row["roc_auc"] == pytest.approx(roc_auc_score(y, p))
        assert row["pr_auc"] == pytest.approx(average_precision_score(y, p))
        assert row["brier"] == pytest.approx(brier_score_loss(y, p))
        assert row["judged"] and not row["decayed"], row.to_dict()
    tiers = clean_run.tables["performance_by_tier"]
    assert (
        tiers.groupby("scoring_run_id")["rows"].sum().to_dict() == cohorts.set_index("scoring_run_id")["rows"].to_dict()
    )


def test_shuffled_labels_of_one_cohort_trip_the_decay_rule(monitored: dict[str, Any]) -> None:
    from spanishgas.lake_reader import LakeReader
    from spanishgas.monitoring.performance import cohort_rows
    from spanishgas.monitoring.reference import load_reference

    settings, result = monitored["settings"], monitored["backfills"][0]
    lake = LakeReader.from_settings(settings)
    labels = lake.read_table("gold", lake.latest_run("gold"), "churn_training_dataset").to_pandas()
    labels["as_of_date"] = pd.to_datetime(labels["as_of_date"]).dt.date
    profile, _ = load_reference(settings, monitored["report"].mlflow_run_id, monitored["report"].model_version)
    run = lake.manifest("scores", result.run_id)
    honest, _ = cohort_rows(run, result.table, labels, profile, settings.monitoring)
    day = labels["as_of_date"] == honest["snapshot_date"]
    shuffled = labels.copy()
    shuffled.loc[day, "label"] = np.random.default_rng(0).permutation(shuffled.loc[day, "label"].to_numpy())
    broken, _ = cohort_rows(run, result.table, shuffled, profile, settings.monitoring)
    assert not honest["decayed"] and broken["decayed"] and "pr_auc_drop" in broken["rules"]


def test_a_run_is_published_in_the_lake_and_appended_to_the_database(monitored: dict[str, Any], clean_run: Any) -> None:
    import sqlalchemy as sa

    from spanishgas.lake_reader import LakeReader
    from spanishgas.monitoring.job import latest_decision, run_monitor

    settings = monitored["settings"]
    lake = LakeReader.from_settings(settings)
    assert clean_run.run_id in lake.published_runs("monitoring")
    tables = {
        "feature_drift",
        "prediction_drift",
        "performance",
        "performance_by_tier",
        "data_quality",
        "quarantine",
        "business",
        "decision",
    }
    for name in tables:
        frame = lake.read_table("monitoring", clean_run.run_id, f"{name}.parquet").to_pandas()
        assert len(frame) == len(clean_run.tables[name]), name
    again = run_monitor(settings, push=False)
    assert latest_decision(settings)["retrain"] == again.decision.retrain
    engine = sa.create_engine(str(settings.monitoring.database_url))
    with engine.connect() as conn:
        runs = conn.execute(
            sa.text("SELECT monitoring_run_id, count(*) FROM monitoring_feature_drift GROUP BY 1")
        ).all()
        decisions = conn.execute(sa.text("SELECT retrain, reasons FROM monitoring_decision")).all()
    engine.dispose()
    counts = dict(runs)
    assert counts[clean_run.run_id] == counts[again.run_id] == len(clean_run.tables["feature_drift"])
    assert len(decisions) >= 2


def test_data_quality_and_the_business_view(monitored: dict[str, Any], clean_run: Any) -> None:
    quality = clean_run.tables["data_quality"]
    assert set(quality["layer"]) == {"bronze", "silver", "gold"} and quality["published"].all()
    bronze = quality[quality["layer"] == "bronze"].iloc[0]
    assert bronze["rows_in"] > 0 and 0 < bronze["quarantine_share"] < 0.05  # the delivery's as-delivered dirt
    assert (clean_run.tables["quarantine"]["rows"] > 0).all()
    business = clean_run.tables["business"].set_index("scoring_run_id")
    latest = business.loc[monitored["latest"].run_id]
    table = monitored["latest"].table
    offered = table["action"] != "no_offer"
    assert latest["offers"] == offered.sum() and latest["holdout"] == table["in_holdout"].sum()
    assert latest["contacted"] + latest["holdout"] == latest["offers"] and not latest["matured"]
    assert latest["offer_cost_eur"] == pytest.approx(table.loc[offered & ~table["in_holdout"], "offer_cost_eur"].sum())
    matured = business.loc[monitored["backfills"][0].run_id]
    assert matured["matured"]


def test_the_decision_is_data_and_the_summary_says_it(clean_run: Any) -> None:
    summary = clean_run.summary()
    decision = summary["decision"]
    assert isinstance(decision["retrain"], bool) and decision["explanations"]
    assert set(decision["reasons"]) <= {"model_age", "feature_drift", "prediction_drift", "performance_decay"}
    json.dumps(summary, default=str)


@pytest.mark.integration
def test_metrics_reach_a_real_pushgateway_and_a_missing_one_is_a_warning(
    monitored: dict[str, Any], pushgateway: str
) -> None:
    import urllib.request

    from spanishgas.monitoring.job import run_monitor
    from tests.conftest import free_port

    settings = monitored["settings"]
    pushed = settings.model_copy(
        update={"monitoring": settings.monitoring.model_copy(update={"pushgateway_url": pushgateway})}
    )
    run = run_monitor(pushed)
    assert run.push == f"pushed to {pushgateway}"
    with urllib.request.urlopen(f"{pushgateway}/metrics", timeout=5) as response:
        text = response.read().decode()
    version = run.model_version
    assert (
        f'spanishgas_monitor_last_success_timestamp_seconds{{instance="",job="spanishgas_monitor",model_version="{version}"}}'
        in text
    )
    assert 'spanishgas_feature_psi{feature="months_to_renewal"' in text
    assert "spanishgas_retrain_recommended" in text and "spanishgas_quarantine_share" in text
    # per layer: when it last published (the latest published run's finish), how long its latest run took
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line[:1] != "#"}
    runs = run.tables["data_quality"]
    for layer in ("bronze", "silver", "gold"):
        latest = runs[(runs["layer"] == layer) & runs["published"]].iloc[-1]
        labels = f'{{instance="",job="spanishgas_monitor",layer="{layer}"}}'
        finished = pd.Timestamp(latest["finished_at"]).timestamp()
        assert samples[f"spanishgas_layer_last_success_timestamp_seconds{labels}"] == pytest.approx(finished)
        assert samples[f"spanishgas_layer_last_run_failed{labels}"] == 0.0
        assert samples[f"spanishgas_layer_run_duration_seconds{labels}"] == pytest.approx(latest["seconds"])
    threshold = 'spanishgas_quarantine_share_threshold{instance="",job="spanishgas_monitor"}'
    assert samples[threshold] == settings.monitoring.quarantine_share_alert
    # bounded labels only: never a customer (a quarantine reason may name the customer_id column)
    assert 'customer_id="' not in text and 'customer="' not in text
    gone = settings.model_copy(
        update={
            "monitoring": settings.monitoring.model_copy(update={"pushgateway_url": f"http://127.0.0.1:{free_port()}"})
        }
    )
    quiet = run_monitor(gone)
    assert quiet.push.startswith("not pushed: the Pushgateway at") and quiet.run_id


def test_a_model_without_a_profile_is_refused_clearly_and_its_profile_rebuilt(monitored: dict[str, Any]) -> None:
    import shutil
    from urllib.parse import urlparse

    from spanishgas.model.registry import configure
    from spanishgas.monitoring.job import run_monitor
    from spanishgas.monitoring.reference import ARTIFACT_DIR, ReferenceMissing, load_reference, rebuild_reference

    settings, report = monitored["settings"], monitored["report"]
    written, _ = load_reference(settings, report.mlflow_run_id, report.model_version)
    # a version registered before monitoring existed: its run has no monitoring artifacts
    artifacts = Path(urlparse(configure(settings).get_run(report.mlflow_run_id).info.artifact_uri).path)
    shutil.rmtree(artifacts / ARTIFACT_DIR)
    with pytest.raises(ReferenceMissing, match=f"--reference-for {report.model_version}"):
        run_monitor(settings, push=False)
    rebuilt = rebuild_reference(settings, report.model_version)
    assert json.loads(rebuilt.to_json()) | {"created_at": ""} == json.loads(written.to_json()) | {"created_at": ""}
    assert run_monitor(settings, push=False).model_version == report.model_version


def test_the_cli_prints_the_decision_and_exits_0(monitored: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from spanishgas.cli import app
    from spanishgas.settings import get_settings

    settings = monitored["settings"]
    monkeypatch.setenv("SPANISHGAS_DATA_ROOT", str(settings.data_root))
    monkeypatch.setenv("SPANISHGAS_MONITORING__INTAKE_MONTHS", "4")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["monitor", "--no-push"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["snapshot_date"] == "2025-01-01" and isinstance(summary["decision"]["retrain"], bool)
    assert summary["matured_cohorts"] == len(monitored["backfills"]) and summary["push"] == "not pushed (--no-push)"


def _admin(dsn: str, statement: str) -> None:
    """Run a statement that cannot run inside a transaction (CREATE / DROP DATABASE)."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


@pytest.mark.integration
def test_the_stack_profile_appends_the_tables_to_postgres(monitored: dict[str, Any], postgres_dsn: str) -> None:
    import uuid

    import psycopg2

    from spanishgas.monitoring.job import run_monitor

    settings = monitored["settings"]
    database = f"spanishgas_monitoring_test_{uuid.uuid4().hex[:8]}"
    url = settings.postgres.sqlalchemy_url(database)
    _admin(postgres_dsn, f'CREATE DATABASE "{database}"')
    on_postgres = settings.model_copy(
        update={"monitoring": settings.monitoring.model_copy(update={"database_url": url})}
    )
    try:
        first, second = run_monitor(on_postgres, push=False), run_monitor(on_postgres, push=False)
        with (
            psycopg2.connect(postgres_dsn.replace("dbname=postgres", f"dbname={database}")) as conn,
            conn.cursor() as cur,
        ):
            cur.execute("SELECT monitoring_run_id, count(*) FROM monitoring_feature_drift GROUP BY 1")
            counts = dict(cur.fetchall())
            cur.execute("SELECT retrain FROM monitoring_decision ORDER BY run_at")
            decisions = [r[0] for r in cur.fetchall()]
        conn.close()
        assert counts == {r.run_id: len(r.tables["feature_drift"]) for r in (first, second)}
        assert decisions == [first.decision.retrain, second.decision.retrain]
        assert first.database_tables == [f"monitoring_{name}" for name in first.tables]
    finally:
        _admin(postgres_dsn, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
