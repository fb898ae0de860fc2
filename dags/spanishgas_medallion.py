"""Raw drop -> bronze -> silver -> gold, each task one `spanishgas <layer>` command (the logic is in the library).

Trigger it after the data engineers drop the seven files, with the drop folder as a parameter:
    airflow dags trigger spanishgas_medallion -c '{"raw_dir": "/landing/2024-12"}'
Each layer updates an Asset, so downstream DAGs (features, training) can be scheduled on gold.
"""

from __future__ import annotations

import sys

import pendulum
from airflow.sdk import Asset, Param, dag, task

# The tasks run the same interpreter as the scheduler's, so they see the same installed platform.
SPANISHGAS = f"{sys.executable} -m spanishgas.cli"

BRONZE = Asset("spanishgas-lake-bronze", uri="spanishgas://lake/bronze")
SILVER = Asset("spanishgas-lake-silver", uri="spanishgas://lake/silver")
GOLD = Asset("spanishgas-lake-gold", uri="spanishgas://lake/gold")


@dag(
    dag_id="spanishgas_medallion",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["spanishgas", "lake"],
    params={"raw_dir": Param("data/raw", type="string", description="folder holding the seven raw files")},
    doc_md=__doc__,
)
def spanishgas_medallion() -> None:
    """Build and publish the three lake layers; a failed gate fails its task and publishes nothing."""

    @task.bash(outlets=[BRONZE])
    def bronze() -> str:
        return SPANISHGAS + " bronze --raw '{{ params.raw_dir }}'"

    @task.bash(outlets=[SILVER])
    def silver() -> str:
        return SPANISHGAS + " silver"

    @task.bash(outlets=[GOLD])
    def gold() -> str:
        return SPANISHGAS + " gold"

    bronze() >> silver() >> gold()


spanishgas_medallion()
