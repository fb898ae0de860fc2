"""Train a challenger and put it through the promotion gate, monthly or on demand (Params: experiment,
trials, PR-AUC floor). The champion-model Asset is updated only when a new champion is promoted, and its
event carries the version and the forward-test metrics; that schedules `spanishgas_scoring`. A challenger
the gate refuses is an outcome, not a failure: the run succeeds and the model Asset is left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.sdk import Metadata, Param, dag, task

from spanishgas.orchestration.assets import CHAMPION
from spanishgas.orchestration.tasks import TIMEOUTS, dag_defaults, train_and_gate

PLATFORM_HOME = str(Path(__file__).parents[1])


@dag(
    dag_id="spanishgas_training",
    schedule="@monthly",
    **dag_defaults("ml-engineering"),
    tags=["spanishgas", "model"],
    params={
        "experiment": Param(None, type=["null", "string"], description="feature set E0-E8 (empty: settings)"),
        "trials": Param(None, type=["null", "integer"], minimum=1, description="Optuna trials (empty: settings)"),
        "floor": Param(None, type=["null", "number"], description="PR-AUC floor of the gate (empty: settings)"),
    },
    render_template_as_native_obj=True,
    doc_md=__doc__,
)
def spanishgas_training() -> None:
    """Train, gate, and publish the model Asset on promotion."""

    @task(execution_timeout=TIMEOUTS["training"])
    def train_and_promote(params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Train with the run's Params and apply the promotion gate."""
        params = params or {}
        return train_and_gate(
            PLATFORM_HOME, params.get("experiment"), params.get("trials"), params.get("floor"), "monthly training"
        )

    @task.short_circuit(execution_timeout=TIMEOUTS["quick"])
    def promoted(outcome: dict[str, Any]) -> bool:
        """Stop here (skipped, not failed) when the gate kept the champion."""
        return bool(outcome["promoted"])

    @task(outlets=[CHAMPION], execution_timeout=TIMEOUTS["quick"])
    def new_champion(outcome: dict[str, Any]) -> Any:
        """The model Asset's event, with the new champion's version and metrics."""
        yield Metadata(CHAMPION, {"version": outcome["version"], "metrics": outcome["metrics"]})

    outcome = train_and_promote()
    promoted(outcome) >> new_champion(outcome)


spanishgas_training()
