"""Where a monitoring run's results go besides the lake: the monitoring database (one row per run and
feature, for dashboards over time) and Prometheus metrics pushed to a Pushgateway."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from spanishgas.monitoring.decision import REASONS
from spanishgas.monitoring.rules import level_rank

if TYPE_CHECKING:
    from spanishgas.monitoring.job import MonitorResult
    from spanishgas.settings import Settings

log = logging.getLogger(__name__)
TABLE_PREFIX = "monitoring_"
PUSH_JOB = "spanishgas_monitor"


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Lists and dicts as JSON text (neither SQLite nor a plain Postgres column takes them)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object and out[column].map(lambda v: isinstance(v, list | dict)).any():
            out[column] = out[column].map(lambda v: json.dumps(v) if isinstance(v, list | dict) else v)
    return out


# What a monitoring run whose database went away leaves behind.
NOT_PUBLISHED = "the run is not published (the decision stays the previous run's): run `spanishgas monitor` again"


def database_address(settings: Settings) -> str:
    """The monitoring database's URL with any password hidden (for error messages)."""
    from sqlalchemy.engine import make_url

    return make_url(str(settings.monitoring.database_url)).render_as_string(hide_password=True)


def write_database(
    settings: Settings,
    run_id: str,
    run_at: str,
    tables: dict[str, pd.DataFrame],
    tags: dict[str, Any] | None = None,
) -> list[str]:
    """Append every table, tagged with the run id and time (and ``tags``: the snapshot date and model
    version, which dashboards plot by), to ``monitoring_<name>`` in one transaction (a failed write
    leaves no partial run). Returns the table names written."""
    import sqlalchemy as sa

    url = str(settings.monitoring.database_url)
    if url.startswith("sqlite:///"):
        from pathlib import Path

        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    elif url == settings.postgres.sqlalchemy_url():
        from spanishgas.postgres import create_database

        create_database(settings, settings.postgres.database)
    engine = sa.create_engine(url)
    written = []
    try:
        with engine.begin() as conn:
            for name, frame in tables.items():
                rows = _plain(frame).assign(monitoring_run_id=run_id, run_at=pd.Timestamp(run_at))
                for column, value in (tags or {}).items():
                    if column not in rows.columns:  # a table's own column (a cohort's snapshot) wins
                        rows[column] = value
                _add_new_columns(conn, TABLE_PREFIX + name, rows)
                rows.to_sql(TABLE_PREFIX + name, conn, if_exists="append", index=False)
                written.append(TABLE_PREFIX + name)
    finally:
        engine.dispose()
    return written


def _add_new_columns(conn: Any, table: str, rows: pd.DataFrame) -> None:
    """Columns a newer monitor adds to an existing table (an upgrade keeps the history it has)."""
    import sqlalchemy as sa

    inspector = sa.inspect(conn)
    if not inspector.has_table(table):
        return
    present = {c["name"] for c in inspector.get_columns(table)}
    for column in rows.columns:
        if column not in present:
            kind = rows[column].dtype.kind
            sql_type = {"f": "DOUBLE PRECISION", "i": "BIGINT", "b": "BOOLEAN", "M": "TIMESTAMP"}.get(kind, "TEXT")
            conn.execute(sa.text(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {sql_type}'))


def _number(value: Any) -> float:
    return float("nan") if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


def metrics_registry(result: MonitorResult, settings: Settings) -> Any:
    """The run's figures as Prometheus gauges (``spanishgas_`` prefix, base units; labels bounded: feature,
    slice, tier, reason, layer and model version, never a customer)."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    version = result.model_version

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, ("model_version", *labels), registry=registry)

    gauge("spanishgas_monitor_last_success_timestamp_seconds", "when the monitor last finished").labels(version).set(
        result.finished_at.timestamp()
    )
    gauge("spanishgas_monitor_duration_seconds", "monitor computation time after reading its inputs").labels(
        version
    ).set(result.seconds)
    gauge("spanishgas_gold_snapshot_timestamp_seconds", "as-of date of the gold snapshot monitored").labels(
        version
    ).set(pd.Timestamp(result.snapshot_date).timestamp())
    gauge("spanishgas_model_age_seconds", "time since the champion was registered").labels(version).set(
        result.decision.figures["model_age_days"] * 86400
    )
    psi = gauge("spanishgas_feature_psi", "population stability index of a feature", ("feature", "slice"))
    level = gauge("spanishgas_feature_drift_level", "0 ok, 1 warn, 2 alert", ("feature", "slice"))
    for row in result.tables["feature_drift"].itertuples():
        psi.labels(version, row.feature, row.slice).set(row.psi)
        level.labels(version, row.feature, row.slice).set(level_rank(row.level))
    drift = result.tables["feature_drift"]
    counted = gauge("spanishgas_features_drifted", "watched features at a drift level", ("level",))
    for name in ("warn", "alert"):
        counted.labels(version, name).set(drift.loc[drift["level"] == name, "feature"].nunique())
    gauge("spanishgas_feature_drift_importance_share", "model importance carried by alert-level features").labels(
        version
    ).set(result.decision.figures["drifted_importance_share"])
    prediction = result.tables["prediction_drift"].iloc[0]
    gauge("spanishgas_prediction_psi", "PSI of the churn score against the test period").labels(version).set(
        prediction["psi"]
    )
    gauge("spanishgas_prediction_drift_level", "0 ok, 1 warn, 2 alert").labels(version).set(
        level_rank(prediction["level"])
    )
    gauge("spanishgas_expected_churn_rate", "mean churn probability of the snapshot").labels(version).set(
        prediction["expected_churn_rate"]
    )
    gauge("spanishgas_reference_churn_rate", "mean churn probability of the test period").labels(version).set(
        prediction["reference_churn_rate"]
    )
    tier = gauge("spanishgas_risk_tier_share", "share of the snapshot's customers per risk tier", ("tier",))
    for name, share in json.loads(prediction["tier_shares"]).items():
        tier.labels(version, name).set(share)
    _cohort_metrics(result, gauge)
    _quality_metrics(result, registry, settings.monitoring.quarantine_share_alert)
    retrain = gauge("spanishgas_retrain_recommended", "1 when the monitor asks for a retrain")
    retrain.labels(version).set(float(result.decision.retrain))
    reason = gauge("spanishgas_retrain_reason", "1 for each reason the monitor asks for a retrain", ("reason",))
    for name in REASONS:
        reason.labels(version, name).set(float(name in result.decision.reasons))
    return registry


def _cohort_metrics(result: MonitorResult, gauge: Any) -> None:
    """The latest matured cohort's realized figures (one series each, whatever its date)."""
    cohorts = result.tables["performance"]
    if cohorts.empty:
        return
    latest = cohorts.iloc[-1]
    version = result.model_version
    for name, column, doc in (
        ("spanishgas_cohort_pr_auc", "pr_auc", "realized PR-AUC of the latest matured cohort"),
        ("spanishgas_cohort_roc_auc", "roc_auc", "realized ROC-AUC of the latest matured cohort"),
        ("spanishgas_cohort_ece", "ece", "expected calibration error of the latest matured cohort"),
        ("spanishgas_cohort_observed_churn_rate", "observed_churn_rate", "who left in the latest matured cohort"),
        ("spanishgas_cohort_expected_churn_rate", "expected_churn_rate", "mean probability of that cohort"),
    ):
        gauge(name, doc).labels(version).set(_number(latest[column]))
    gauge("spanishgas_cohort_decayed", "1 when the latest matured cohort broke a decay rule").labels(version).set(
        float(bool(latest["decayed"]))
    )
    gauge("spanishgas_cohorts_matured", "matured cohorts judged so far").labels(version).set(len(cohorts))


def _quality_metrics(result: MonitorResult, registry: Any, quarantine_threshold: float) -> None:
    """Per layer: the latest run's rows in, quarantine share (and rows by reason), gate failures, duration
    and outcome, and when a run of the layer last published. The quarantine threshold rides along so the
    alert rule compares with the setting instead of a second copy of the number."""
    from prometheus_client import Gauge

    runs, quarantine = result.tables["data_quality"], result.tables["quarantine"]

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ("layer",)) -> Gauge:
        return Gauge(name, doc, labels, registry=registry)

    share = gauge("spanishgas_quarantine_share", "quarantined share of the latest run's rows")
    by_reason = gauge("spanishgas_quarantine_rows", "quarantined rows of the latest run by reason", ("layer", "reason"))
    gates = gauge("spanishgas_gate_failures", "failed gates of the latest run")
    rows_in = gauge("spanishgas_rows_in", "rows the latest run read")
    duration = gauge("spanishgas_layer_run_duration_seconds", "how long the latest run of the layer took")
    failed = gauge("spanishgas_layer_last_run_failed", "1 when the latest run of the layer published nothing")
    success = gauge("spanishgas_layer_last_success_timestamp_seconds", "when a run of the layer last published")
    gauge("spanishgas_quarantine_share_threshold", "quarantine share above which ops are alerted", ()).set(
        quarantine_threshold
    )
    for layer, group in runs.groupby("layer"):
        latest = group.iloc[-1]
        share.labels(layer).set(_number(latest["quarantine_share"]))
        gates.labels(layer).set(float(latest["gate_failures"]))
        if pd.notna(latest["rows_in"]):  # gold reads tables, not rows of a delivery
            rows_in.labels(layer).set(_number(latest["rows_in"]))
        if pd.notna(latest["seconds"]):
            duration.labels(layer).set(_number(latest["seconds"]))
        failed.labels(layer).set(float(not bool(latest["published"])))
        published = group[group["published"].astype(bool) & group["finished_at"].notna()]
        if not published.empty:
            finished = pd.Timestamp(published.iloc[-1]["finished_at"])
            success.labels(layer).set(finished.timestamp())
        reasons = quarantine[quarantine["run_id"] == latest["run_id"]].groupby("reason")["rows"].sum()
        for reason, n in reasons.items():
            by_reason.labels(layer, reason).set(float(n))


def push_metrics(settings: Settings, result: MonitorResult) -> str:
    """Push the run's metrics to the Pushgateway (grouping key: the job, so each push replaces the last
    and a retired model's series go away). Returns what happened, for the run's report; a gateway that
    does not answer is a warning, never a failed run."""
    from prometheus_client import push_to_gateway

    url = settings.monitoring.pushgateway_url
    if not url:
        return "not pushed: no Pushgateway configured (SPANISHGAS_MONITORING__PUSHGATEWAY_URL)"
    try:
        push_to_gateway(
            url, job=PUSH_JOB, registry=metrics_registry(result, settings), timeout=settings.monitoring.push_timeout_s
        )
    except OSError as exc:
        message = f"not pushed: the Pushgateway at {url} did not answer ({exc})"
        log.warning(message)
        return message
    return f"pushed to {url}"
