"""Retrain because the monitor asked: scheduled on the retrain-requested Asset, it reads the latest
request's reasons, trains a challenger, puts it through the promotion gate, and on promotion updates the
champion-model Asset (version and metrics), which has `spanishgas_scoring` re-score the customers.
A request while the newest challenger was already trained on the feature store's gold run stops (skipped)
before training: the same data give the same model, so it waits for the next delivery instead of looping.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.sdk import Metadata, dag, task

from spanishgas.orchestration.assets import CHAMPION, DRIFT
from spanishgas.orchestration.tasks import TIMEOUTS, dag_defaults, new_data_since_training, train_and_gate

PLATFORM_HOME = str(Path(__file__).parents[1])


@dag(
    dag_id="spanishgas_retraining",
    schedule=[DRIFT],
    **dag_defaults("ml-engineering"),
    tags=["spanishgas", "model", "monitoring"],
    doc_md=__doc__,
)
def spanishgas_retraining() -> None:
    """Read the request, train, gate, publish the new champion."""

    @task(inlets=[DRIFT], execution_timeout=TIMEOUTS["quick"])
    def read_request(inlet_events: Any = None) -> dict[str, Any]:
        """The latest retrain request's metadata (why the monitor asked)."""
        events = list(inlet_events[DRIFT]) if inlet_events is not None else []
        if not events:
            raise ValueError("no retrain request on the drift Asset: trigger spanishgas_monitoring instead")
        return dict(events[-1].extra)

    @task.short_circuit(execution_timeout=TIMEOUTS["quick"])
    def new_data(request: dict[str, Any]) -> bool:
        """Stop here when the newest challenger already saw the feature store's gold run."""
        return new_data_since_training(PLATFORM_HOME)

    @task(execution_timeout=TIMEOUTS["training"])
    def retrain(request: dict[str, Any]) -> dict[str, Any]:
        """Train with the settings' experiment and trials; the gate's log names the request's reasons."""
        reason = f"retraining asked by {request.get('monitoring_run_id')}: {', '.join(request.get('reasons', []))}"
        return train_and_gate(PLATFORM_HOME, None, None, None, reason)

    @task.short_circuit(execution_timeout=TIMEOUTS["quick"])
    def promoted(outcome: dict[str, Any]) -> bool:
        """Stop here when the gate kept the champion."""
        return bool(outcome["promoted"])

    @task(outlets=[CHAMPION], execution_timeout=TIMEOUTS["quick"])
    def new_champion(outcome: dict[str, Any], request: dict[str, Any]) -> Any:
        """The model Asset's event: the new champion re-scores through `spanishgas_scoring`."""
        event = {"version": outcome["version"], "metrics": outcome["metrics"], "retrained_for": request["reasons"]}
        yield Metadata(CHAMPION, event)

    request = read_request()
    outcome = retrain(request)
    new_data(request) >> outcome
    promoted(outcome) >> new_champion(outcome, request)


spanishgas_retraining()
