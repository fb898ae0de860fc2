"""Gold -> feature store: load the newest gold run into the offline store, apply the definitions,
materialize to the online store the API reads. Runs on every gold update (the gold Asset); updates the
online-features Asset, which schedules `spanishgas_scoring`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.sdk import dag, task

from spanishgas.orchestration.assets import GOLD, ONLINE_FEATURES
from spanishgas.orchestration.tasks import TIMEOUTS, dag_defaults, refresh_features

PLATFORM_HOME = str(Path(__file__).parents[1])


@dag(
    dag_id="spanishgas_features",
    schedule=[GOLD],
    **dag_defaults("data-engineering"),
    tags=["spanishgas", "features"],
    doc_md=__doc__,
)
def spanishgas_features() -> None:
    """Load, apply, materialize."""

    @task(outlets=[ONLINE_FEATURES], execution_timeout=TIMEOUTS["features"])
    def load_apply_materialize() -> dict[str, Any]:
        """One task: a materialization must follow the load it belongs to."""
        return refresh_features(PLATFORM_HOME)

    load_apply_materialize()


spanishgas_features()
