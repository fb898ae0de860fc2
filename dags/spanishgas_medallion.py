"""Raw drop -> bronze -> silver -> gold, each task one `spanishgas <layer>` command (the logic is in the library).

Trigger it after the data engineers drop the seven files, with the drop folder as a parameter:
    airflow dags trigger spanishgas_medallion -c '{"raw_dir": "/landing/2024-12"}'
Each layer updates an Asset, so downstream DAGs (features, training) can be scheduled on gold.

The commands run in the platform's folder (the parent of `dags/`), so the settings' relative defaults
(`.env`, `data/`, `great_expectations/`) mean the same as for `spanishgas` run there by hand; Airflow's
bash tasks otherwise run in a temporary folder that is deleted afterwards. Where the DAG file is deployed
elsewhere, set absolute `SPANISHGAS_DATA_ROOT` / `SPANISHGAS_LAKE_URI` / `SPANISHGAS_GX_ROOT`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pendulum
from airflow.sdk import Asset, Param, dag, task

# The tasks run the same interpreter as the scheduler's, so they see the same installed platform.
SPANISHGAS = f"{sys.executable} -m spanishgas.cli"
PLATFORM_HOME = str(Path(__file__).parents[1])

BRONZE = Asset("spanishgas-lake-bronze", uri="spanishgas://lake/bronze")
SILVER = Asset("spanishgas-lake-silver", uri="spanishgas://lake/silver")
GOLD = Asset("spanishgas-lake-gold", uri="spanishgas://lake/gold")


@dag(
    dag_id="spanishgas_medallion",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    # silver and gold read the newest published run of the layer below: one run at a time keeps that
    # the run their upstream task just published
    max_active_runs=1,
    tags=["spanishgas", "lake"],
    params={"raw_dir": Param("data/raw", type="string", description="folder holding the seven raw files")},
    doc_md=__doc__,
)
def spanishgas_medallion() -> None:
    """Build and publish the three lake layers; a failed gate fails its task and publishes nothing."""

    # The folder travels in the environment, not in the command line, so no quoting can break it.
    @task.bash(outlets=[BRONZE], cwd=PLATFORM_HOME, env={"RAW_DIR": "{{ params.raw_dir }}"}, append_env=True)
    def bronze() -> str:
        return SPANISHGAS + ' bronze --raw "$RAW_DIR"'

    @task.bash(outlets=[SILVER], cwd=PLATFORM_HOME)
    def silver() -> str:
        return SPANISHGAS + " silver"

    @task.bash(outlets=[GOLD], cwd=PLATFORM_HOME)
    def gold() -> str:
        return SPANISHGAS + " gold"

    bronze() >> silver() >> gold()


spanishgas_medallion()
