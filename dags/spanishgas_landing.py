"""Waits for a delivery in the landing folder, then runs the medallion DAG on it.

A delivery is a folder inside `SPANISHGAS_ORCHESTRATION__LANDING_DIR` (default `data/landing`) holding the
seven raw files and, written last by whoever delivers, the marker file
`SPANISHGAS_ORCHESTRATION__DELIVERY_MARKER` (default `_DELIVERY_COMPLETE`). The sensor waits deferred (in
the triggerer, holding no worker slot); the first complete folder nobody has claimed is claimed (recorded
under `data/orchestration/`; the raw files are never moved or changed) and handed to
`spanishgas_medallion` as its `raw_dir`. The DAG runs continuously, one run at a time: when one delivery
is handed on, the next run starts waiting for the next.
"""

from __future__ import annotations

from pathlib import Path

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task

from spanishgas.orchestration.sensors import DeliverySensor
from spanishgas.orchestration.tasks import TIMEOUTS, claim_delivery, dag_defaults

PLATFORM_HOME = str(Path(__file__).parents[1])


@dag(
    dag_id="spanishgas_landing",
    schedule="@continuous",
    **dag_defaults("data-engineering"),
    tags=["spanishgas", "lake", "landing"],
    doc_md=__doc__,
)
def spanishgas_landing() -> None:
    """Wait for a complete delivery, claim it, trigger the medallion DAG with it."""
    wait = DeliverySensor(
        task_id="wait_for_delivery",
        platform_home=PLATFORM_HOME,
        timeout=TIMEOUTS["sensor"].total_seconds(),
        soft_fail=True,  # a week without deliveries ends the run skipped; the next one waits again
        execution_timeout=TIMEOUTS["sensor"],
    )

    @task(execution_timeout=TIMEOUTS["quick"])
    def claim(delivery: str) -> str:
        """Record the delivery as handed on, so no later run takes it again."""
        return claim_delivery(PLATFORM_HOME, delivery)

    claimed = claim(wait.output)
    trigger = TriggerDagRunOperator(
        task_id="run_medallion",
        trigger_dag_id="spanishgas_medallion",
        conf={"raw_dir": "{{ ti.xcom_pull(task_ids='claim') }}"},
        execution_timeout=TIMEOUTS["quick"],
    )
    claimed >> trigger


spanishgas_landing()
