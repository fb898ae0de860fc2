"""Drift, matured-cohort performance and data quality after every scoring run and daily at 06:00 UTC;
the metrics go to the Pushgateway (Grafana, alerts). When the monitor's decision says retrain, the
retrain-requested Asset gets an event carrying the reasons, which schedules `spanishgas_retraining`;
otherwise the run stops there, skipped, not failed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.sdk import AssetOrTimeSchedule, Metadata, dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from spanishgas.orchestration.assets import DRIFT, SCORES
from spanishgas.orchestration.tasks import TIMEOUTS, dag_defaults, monitor, retrain_request

PLATFORM_HOME = str(Path(__file__).parents[1])


@dag(
    dag_id="spanishgas_monitoring",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 6 * * *", timezone="UTC"), assets=[SCORES]),
    **dag_defaults("ml-engineering"),
    tags=["spanishgas", "monitoring"],
    doc_md=__doc__,
)
def spanishgas_monitoring() -> None:
    """Monitor; on a retrain decision, request one through the drift Asset."""

    @task(execution_timeout=TIMEOUTS["monitoring"])
    def measure() -> dict[str, Any]:
        """One monitoring run (lake, database, Pushgateway)."""
        return monitor(PLATFORM_HOME)

    @task.short_circuit(execution_timeout=TIMEOUTS["quick"])
    def retrain_asked(summary: dict[str, Any]) -> bool:
        """Continue only when the decision says retrain."""
        return bool(summary["decision"]["retrain"])

    @task(outlets=[DRIFT], execution_timeout=TIMEOUTS["quick"])
    def request_retrain(summary: dict[str, Any]) -> Any:
        """The drift Asset's event, with the reasons the retraining DAG reads."""
        yield Metadata(DRIFT, retrain_request(summary))

    summary = measure()
    retrain_asked(summary) >> request_retrain(summary)


spanishgas_monitoring()
