"""Raw drop -> bronze -> silver -> gold: the three Spark jobs (`spark_jobs/<layer>.py`) submitted through the
Airflow connection `spark_default` (docs/orchestration.md says how to point it at a cluster).

Triggered by `spanishgas_landing` for each complete delivery, or by hand with the drop folder:
    airflow dags trigger spanishgas_medallion -c '{"raw_dir": "/landing/2024-12"}'
Each layer's task updates its Asset; gold schedules `spanishgas_features`. A failed Great Expectations gate
fails its task and publishes nothing: the previous published run keeps serving.

Relative settings (`data/`, `great_expectations/`, `.env`) and a relative `raw_dir` are read from the
platform folder (the parent of `dags/`), as for `spanishgas` run there by hand.
"""

from __future__ import annotations

from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Param, dag

from spanishgas.orchestration.assets import BRONZE, GOLD, SILVER
from spanishgas.orchestration.tasks import TIMEOUTS, dag_defaults, spark_submit_conf, spark_submit_env
from spanishgas.settings import get_settings

PLATFORM_HOME = str(Path(__file__).parents[1])


@dag(
    dag_id="spanishgas_medallion",
    schedule=None,
    **dag_defaults("data-engineering"),
    tags=["spanishgas", "lake"],
    params={
        "raw_dir": Param(
            "data/raw", type="string", description="folder holding the seven raw files (relative: to the platform)"
        ),
    },
    doc_md=__doc__,
)
def spanishgas_medallion() -> None:
    """Build and publish the three lake layers, one Spark job each."""
    settings = get_settings()
    layers = []
    for layer, asset in (("bronze", BRONZE), ("silver", SILVER), ("gold", GOLD)):
        args = ["--home", PLATFORM_HOME] + (["--raw", "{{ params.raw_dir }}"] if layer == "bronze" else [])
        layers.append(
            SparkSubmitOperator(
                task_id=layer,
                application=f"{PLATFORM_HOME}/spark_jobs/{layer}.py",
                application_args=args,
                conn_id=settings.orchestration.spark_conn_id,
                conf=spark_submit_conf(settings),
                driver_memory=settings.spark.driver_memory,
                name=f"spanishgas-{layer}",
                env_vars=spark_submit_env(),
                outlets=[asset],
                execution_timeout=TIMEOUTS["spark"],
            )
        )
    layers[0] >> layers[1] >> layers[2]


spanishgas_medallion()
