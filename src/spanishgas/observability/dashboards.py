"""The three Grafana dashboards ops open: Scoring API, Drift and model health, Pipeline and data quality.

``spanishgas dashboards`` writes them to ``monitoring/grafana/dashboards/`` (what Grafana provisions);
a test fails when the committed JSON differs from what this module builds. Every panel's query is
evaluated through a real Prometheus (or the monitoring database) in
``tests/integration/test_observability.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from spanishgas.monitoring.publish import TABLE_PREFIX
from spanishgas.monitoring.rules import ALERT, WARN
from spanishgas.observability.grafana import Dashboard, Panel, Query, Variable
from spanishgas.settings import MonitoringSettings

SCORING_API_UID = "spanishgas-scoring-api"
DRIFT_UID = "spanishgas-drift-model-health"
PIPELINE_UID = "spanishgas-pipeline-quality"
DASHBOARD_DIR = Path("monitoring/grafana/dashboards")

# Probes and the metrics scrape are not the agents' traffic.
AGENT_ROUTES = 'route!~"/health|/ready|/metrics"'
SCORE_ROUTE = 'route="/score/{customer_id}"'
RATE = "$__rate_interval"
UP_DOWN = (("1", "up", "green"), ("0", "down", "red"))
YES_NO = (("0", "no", "green"), ("1", "yes", "orange"))


def _quantiles(histogram: str) -> tuple[Query, ...]:
    return tuple(
        Query(f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket[{RATE}])))", f"p{int(q * 100)}")
        for q in (0.5, 0.99)
    )


def scoring_api() -> Dashboard:
    """Serving health for the call-center API."""
    version = 'model_version=~"$model_version"'
    status = [
        Panel("API up", "1 when Prometheus reaches every API target.", (Query('min(up{job="spanishgas_api"})'),),
              "stat", width=4, height=4, mappings=UP_DOWN),
        Panel("Model loaded", "0 when any worker has no model: it answers 503 to every score request.",
              (Query("min(spanishgas_api_model_loaded)"),), "stat", width=4, height=4, mappings=UP_DOWN),
        Panel("Served model version", "Registry version the API scores with (the lowest across workers).",
              (Query("min(spanishgas_api_served_model_version)"),), "stat", width=4, height=4),
        Panel("Registry champion", "Where the registry's champion alias pointed at the API's last check.",
              (Query("max(spanishgas_api_registry_champion_version)"),), "stat", width=4, height=4),
        Panel("Requests per second", "All routes, all workers, over 5 minutes.",
              (Query("sum(route:spanishgas_api_requests:rate5m)"),), "stat", "reqps", width=4, height=4),
        Panel("Error ratio (5 min)", "Share of the agents' requests answered 5xx (probes excluded).",
              (Query(f'(sum(rate(spanishgas_api_requests_total{{status=~"5..", {AGENT_ROUTES}}}[5m])) or vector(0)) '
                     f"/ sum(rate(spanishgas_api_requests_total{{{AGENT_ROUTES}}}[5m]))"),),
              "stat", "percentunit", width=4, height=4, thresholds=((0.01, "orange"), (0.05, "red"))),
    ]  # fmt: skip
    traffic = [
        Panel("Requests by route and status", "Answers per second; 4xx are the clients' mistakes, 5xx ours.",
              (Query(f"sum by (route, status) (rate(spanishgas_api_requests_total[{RATE}]))", "{{route}} {{status}}"),),
              unit="reqps"),
        Panel("Error ratio by route", "Share of each route's answers that were 5xx (recording rule, 5 min).",
              (Query("route:spanishgas_api_errors:ratio_rate5m", "{{route}}"),), unit="percentunit"),
        Panel("503 answers by reason", "no_model: nothing to score with; online_store: Redis unreachable or slow. "
              "Failed online reads count each read the API tried.",
              (Query(f"sum by (reason) (rate(spanishgas_api_unavailable_responses_total[{RATE}]))", "{{reason}}"),
               Query(f"sum(rate(spanishgas_api_online_store_errors_total[{RATE}]))", "failed online reads")),
              unit="reqps"),
        Panel("Score cache hit ratio", "Answers served from the scored-vector cache (warmed at model load).",
              (Query(f'sum(rate(spanishgas_api_score_cache_lookups_total{{result="hit"}}[{RATE}])) '
                     f"/ sum(rate(spanishgas_api_score_cache_lookups_total[{RATE}]))", "hit ratio"),),
              unit="percentunit"),
    ]  # fmt: skip
    latency = [
        Panel("Latency of GET /score (p50 / p95 / p99)", "Server time per customer lookup; agents' budget: "
              "p99 under 15 ms (alert SpanishGasAPILatencyHigh).",
              (Query(f"route:spanishgas_api_request_seconds:quantile_rate5m{{{SCORE_ROUTE}}}", "p{{quantile}}"),),
              unit="s", thresholds=((0.015, "red"),)),
        Panel("p99 latency by route", "The 99th percentile of every route (recording rule, 5 min).",
              (Query('route:spanishgas_api_request_seconds:quantile_rate5m{quantile="0.99"}', "{{route}}"),), unit="s"),
        Panel("Feature fetch latency", "One online-store read (Redis) per request.",
              _quantiles("spanishgas_api_feature_fetch_seconds"), unit="s", width=12),
        Panel("Model latency", "Scoring, explaining and recommending vectors not in the cache (what-if requests, "
              "new feature values).", _quantiles("spanishgas_api_model_seconds"), unit="s", width=12),
    ]  # fmt: skip
    model = [
        Panel("Risk-tier mix of answers", "Scores answered per second by risk tier, for the selected model versions.",
              (Query(f"sum by (risk_tier) (rate(spanishgas_api_predictions_total{{{version}}}[{RATE}]))",
                     "{{risk_tier}}"),), unit="reqps", stacked=True),
        Panel("Served model", "Name and versions of the churn and segment models in service.",
              (Query("max by (name, version, segment_version) (spanishgas_api_model_info) == 1", instant=True),),
              "table"),
    ]  # fmt: skip
    return Dashboard(
        uid=SCORING_API_UID,
        title="SpanishGas / Scoring API",
        description="Serving health of the call-center scoring API (docs/monitoring.md#the-dashboards).",
        tags=("spanishgas", "api"),
        variables=(Variable("model_version", "model_version", "spanishgas_api_predictions_total"),),
        rows=[("Status", status), ("Traffic and errors", traffic), ("Latency", latency), ("Model", model)],
        time_from="now-3h",
    )


def _sql_latest(table: str) -> str:
    return f"(SELECT MAX(monitoring_run_id) FROM {TABLE_PREFIX}{table} WHERE $__timeFilter(run_at))"


def drift_and_model_health() -> Dashboard:
    """Drift, matured-cohort performance and the retraining decision, from the monitor's pushed metrics
    and its tables in the monitoring database."""
    defaults = MonitoringSettings()
    v = 'model_version=~"$model_version"'
    decision = [
        Panel("Retrain recommended", "The latest monitoring run's decision.",
              (Query(f"max(spanishgas_retrain_recommended{{{v}}})"),), "stat", width=4, mappings=YES_NO),
        Panel("Reasons", "1 for each reason the monitor asks for a retrain (docs/monitoring.md).",
              (Query(f"max by (reason) (spanishgas_retrain_reason{{{v}}})", "{{reason}}"),), "bargauge", width=8,
              thresholds=((1, "orange"),)),
        Panel("Champion age", "Time since the served champion was registered (retrain after "
              f"{defaults.retrain_after_days} days).",
              (Query(f"max(spanishgas_model_age_seconds{{{v}}})"),), "stat", "s", width=4,
              thresholds=((defaults.retrain_after_days * 86400, "orange"),)),
        Panel("Last monitoring run", "Time since the monitor last succeeded (alert after 26 hours).",
              (Query("time() - max(spanishgas_monitor_last_success_timestamp_seconds)"),), "stat", "s", width=4,
              thresholds=((26 * 3600, "red"),)),
        Panel("Snapshot monitored", "As-of date of the gold snapshot the latest run measured.",
              (Query("max(spanishgas_gold_snapshot_timestamp_seconds) * 1000"),), "stat", "dateTimeAsIso", width=4),
        Panel("Retraining decisions", "Every monitoring run's decision, its reasons and their explanations.",
              (Query(sql=f"SELECT run_at AS time, snapshot_date::date AS snapshot, model_version AS model, retrain, "
                         f"reasons, explanations FROM {TABLE_PREFIX}decision WHERE $__timeFilter(run_at) "
                         "AND model_version IN ($model_version) ORDER BY run_at DESC LIMIT 50", table=True),),
              "table", width=24, height=7),
    ]  # fmt: skip
    psi_lines = ((defaults.psi_warn, "orange"), (defaults.psi_alert, "red"))
    features = [
        Panel("PSI per feature over time", "Population stability index of each watched feature against the "
              f"model's training set (warn {defaults.psi_warn}, alert {defaults.psi_alert}; levels are judged on "
              "their median and spread instead).",
              (Query(f'max by (feature) (spanishgas_feature_psi{{{v}, slice=~"$slice"}})', "{{feature}}"),),
              thresholds=psi_lines, height=9),
        Panel("Top drifted features now", "The ten highest PSIs of the latest run.",
              (Query(f'topk(10, max by (feature) (spanishgas_feature_psi{{{v}, slice=~"$slice"}}))', "{{feature}}",
                     instant=True),), "bargauge", thresholds=psi_lines, height=9),
        Panel("Features at warn / alert", "Watched features at each drift level in the latest run.",
              (Query(f"max by (level) (spanishgas_features_drifted{{{v}}})", "{{level}}"),), "stat", width=6),
        Panel("Importance share at alert level", "Share of the model's importance carried by alert-level "
              f"features (retrain at {defaults.drift_importance_share:.0%}).",
              (Query(f"max(spanishgas_feature_drift_importance_share{{{v}}})"),), "stat", "percentunit", width=6,
              thresholds=((defaults.drift_importance_share, "red"),)),
        Panel("Drift by snapshot", "The latest monitoring run of each snapshot: features at warn and alert, "
              "highest PSI.",
              (Query(sql=f"SELECT snapshot_date::date AS snapshot, model_version AS model, "
                         f"COUNT(DISTINCT feature) FILTER (WHERE level = '{ALERT}') AS at_alert, "
                         f"COUNT(DISTINCT feature) FILTER (WHERE level = '{WARN}') AS at_warn, MAX(psi) AS max_psi "
                         f"FROM {TABLE_PREFIX}feature_drift WHERE monitoring_run_id IN (SELECT MAX(monitoring_run_id) "
                         f"FROM {TABLE_PREFIX}feature_drift WHERE $__timeFilter(run_at) GROUP BY snapshot_date) "
                         "AND model_version IN ($model_version) GROUP BY 1, 2 ORDER BY 1 DESC", table=True),),
              "table"),
    ]  # fmt: skip
    predictions = [
        Panel("Prediction drift", f"PSI of the churn score against the test period (alert {defaults.psi_alert}).",
              (Query(f"max(spanishgas_prediction_psi{{{v}}})", "score PSI"),), width=8, thresholds=psi_lines),
        Panel("Expected churn rate", "Mean churn probability of the latest snapshot and of the model's test period.",
              (Query(f"max(spanishgas_expected_churn_rate{{{v}}})", "now"),
               Query(f"max(spanishgas_reference_churn_rate{{{v}}})", "test period")), unit="percentunit", width=8),
        Panel("Risk-tier mix of the snapshot", "Share of the book in each risk tier.",
              (Query(f"max by (tier) (spanishgas_risk_tier_share{{{v}}})", "{{tier}}"),), unit="percentunit",
              width=8, stacked=True),
    ]  # fmt: skip
    cohorts = [
        Panel("Expected vs observed churn", "The latest matured cohort: who the model expected to leave and who left.",
              (Query(f"max(spanishgas_cohort_expected_churn_rate{{{v}}})", "expected"),
               Query(f"max(spanishgas_cohort_observed_churn_rate{{{v}}})", "observed")), unit="percentunit", width=8),
        Panel("PR-AUC and ECE of the latest matured cohort", "Realized ranking quality and calibration error.",
              (Query(f"max(spanishgas_cohort_pr_auc{{{v}}})", "PR-AUC"),
               Query(f"max(spanishgas_cohort_ece{{{v}}})", "ECE")), width=8),
        Panel("Cohort decayed", "1 when the latest matured cohort broke a decay rule.",
              (Query(f"max(spanishgas_cohort_decayed{{{v}}})"),), "stat", width=4, mappings=YES_NO),
        Panel("Cohorts matured", "Scoring runs whose 90-day outcome is known.",
              (Query(f"max(spanishgas_cohorts_matured{{{v}}})"),), "stat", width=4),
        Panel("Matured cohorts", "Every matured cohort of the latest run against its model's test figures.",
              (Query(sql=f"SELECT snapshot_date::date AS cohort, model_version AS model, rows AS customers, churners, "
                         "pr_auc, reference_pr_auc, ece, reference_ece, observed_churn_rate, expected_churn_rate, "
                         f"decayed FROM {TABLE_PREFIX}performance WHERE monitoring_run_id = "
                         f"{_sql_latest('performance')} ORDER BY 1", table=True),),
              "table", width=24, height=7),
    ]  # fmt: skip
    return Dashboard(
        uid=DRIFT_UID,
        title="SpanishGas / Drift and model health",
        description="What the monitor measured: drift, matured cohorts, the retraining decision "
        "(docs/monitoring.md#the-dashboards).",
        tags=("spanishgas", "model"),
        variables=(
            Variable("model_version", "model_version", "spanishgas_feature_psi"),
            Variable("slice", "slice", "spanishgas_feature_psi"),
        ),
        rows=[
            ("Retraining decision", decision),
            ("Feature drift", features),
            ("Predictions", predictions),
            ("Matured cohorts", cohorts),
        ],
        time_from="now-30d",
        refresh="5m",
    )


def pipeline_and_quality() -> Dashboard:
    """The medallion layers' latest runs and their quarantine, from the monitor's view of the manifests."""
    defaults = MonitoringSettings()
    layer = 'layer=~"$layer"'
    latest_quality = f"(SELECT MAX(monitoring_run_id) FROM {TABLE_PREFIX}data_quality)"
    runs = [
        Panel("Since the last published run", "Time since each layer last published a run.",
              (Query(f"time() - max by (layer) (spanishgas_layer_last_success_timestamp_seconds{{{layer}}})",
                     "{{layer}}"),), "stat", "s", width=8),
        Panel("Duration of the latest run", "Seconds the latest run of each layer took.",
              (Query(f"max by (layer) (spanishgas_layer_run_duration_seconds{{{layer}}})", "{{layer}}"),),
              "bargauge", "s", width=8),
        Panel("Latest run failed", "1 when the latest run of the layer published nothing.",
              (Query(f"max by (layer) (spanishgas_layer_last_run_failed{{{layer}}})", "{{layer}}"),), "stat",
              width=8, mappings=YES_NO),
        Panel("Rows in", "Rows the latest bronze run read from the delivery, and silver from bronze.",
              (Query(f"max by (layer) (spanishgas_rows_in{{{layer}}})", "{{layer}}"),), "bargauge", width=8),
        Panel("Gate failures", "Great Expectations checkpoints that failed in the latest run.",
              (Query(f"max by (layer) (spanishgas_gate_failures{{{layer}}})", "{{layer}}"),), "bargauge", width=8,
              thresholds=((1, "red"),)),
        Panel("Gold snapshot age", "Age of the newest monthly snapshot (alert after 45 days).",
              (Query("time() - max(spanishgas_gold_snapshot_timestamp_seconds)"),), "stat", "s", width=8,
              thresholds=((45 * 86400, "red"),)),
    ]  # fmt: skip
    quarantine = [
        Panel("Quarantine share by layer", "Share of the latest run's rows quarantined (alert above "
              f"{defaults.quarantine_share_alert:.0%}).",
              (Query(f"max by (layer) (spanishgas_quarantine_share{{{layer}}})", "{{layer}}"),), "bargauge",
              "percentunit", width=8, thresholds=((defaults.quarantine_share_alert, "red"),)),
        Panel("Quarantine share by reason", "Quarantined rows of each reason over the rows the layer read.",
              (Query(f"spanishgas_quarantine_rows{{{layer}}} / on (layer) group_left () spanishgas_rows_in",
                     "{{layer}}: {{reason}}"),), "bargauge", "percentunit", width=16),
        Panel("Quarantined rows by source and reason", "The latest run of each layer, per source file or table.",
              (Query(sql=f"SELECT layer, source, reason, rows, share FROM {TABLE_PREFIX}quarantine "
                         f"WHERE monitoring_run_id = {latest_quality} AND layer IN ($layer) AND run_id IN "
                         f"(SELECT DISTINCT ON (layer) run_id FROM {TABLE_PREFIX}data_quality WHERE monitoring_run_id "
                         f"= {latest_quality} ORDER BY layer, run_id DESC) ORDER BY rows DESC", table=True),),
              "table"),
        Panel("Runs", "Every run the lake's manifests record (failed ones too), newest first.",
              (Query(sql=f"SELECT layer, run_id, status, published, finished_at, seconds, rows_in, rows_quarantined, "
                         f"quarantine_share, gate_failures, schema_changes FROM {TABLE_PREFIX}data_quality "
                         f"WHERE monitoring_run_id = {latest_quality} AND layer IN ($layer) "
                         "ORDER BY run_id DESC LIMIT 60", table=True),),
              "table"),
    ]  # fmt: skip
    return Dashboard(
        uid=PIPELINE_UID,
        title="SpanishGas / Pipeline and data quality",
        description="The medallion layers' latest runs, rows and quarantine (docs/monitoring.md#the-dashboards).",
        tags=("spanishgas", "pipeline"),
        variables=(Variable("layer", "layer", "spanishgas_quarantine_share"),),
        rows=[("Runs", runs), ("Quarantine", quarantine)],
        time_from="now-7d",
        refresh="5m",
    )


def all_dashboards() -> dict[str, Dashboard]:
    """Each dashboard by its file name."""
    return {
        "scoring_api.json": scoring_api(),
        "drift_model_health.json": drift_and_model_health(),
        "pipeline_quality.json": pipeline_and_quality(),
    }


def render(dashboard: Dashboard) -> str:
    """The JSON text written to the repository (stable key order, trailing newline)."""
    return json.dumps(dashboard.to_json(), indent=2, ensure_ascii=False) + "\n"


def write_dashboards(folder: Path = DASHBOARD_DIR) -> list[Path]:
    """Write every dashboard's JSON into ``folder``; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, dashboard in all_dashboards().items():
        path = folder / name
        path.write_text(render(dashboard))
        written.append(path)
    return written
