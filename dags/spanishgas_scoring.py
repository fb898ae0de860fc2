"""Segments, batch churn scores and the retention plan for the newest snapshot. Runs when the online
features are refreshed or a new champion is promoted (either Asset); the plan's budget is a Param
(empty: no budget, every offer that pays for itself). Updates the scores Asset, which schedules
`spanishgas_monitoring`. On a fresh platform with no champion yet the run stops after its first task
(skipped, not failed) and says to trigger `spanishgas_training`, whose promotion runs it again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.sdk import Param, dag, task

from spanishgas.orchestration.assets import CHAMPION, ONLINE_FEATURES, SCORES
from spanishgas.orchestration.tasks import TIMEOUTS, champion_ready, dag_defaults, score_customers

PLATFORM_HOME = str(Path(__file__).parents[1])


@dag(
    dag_id="spanishgas_scoring",
    schedule=(ONLINE_FEATURES | CHAMPION),
    **dag_defaults("ml-engineering"),
    tags=["spanishgas", "scoring"],
    params={
        "budget_eur": Param(
            None, type=["null", "number"], minimum=0, description="monthly retention budget in EUR (empty: none)"
        ),
    },
    render_template_as_native_obj=True,
    doc_md=__doc__,
)
def spanishgas_scoring() -> None:
    """Check for a champion, segment, score, plan."""

    @task.short_circuit(execution_timeout=TIMEOUTS["quick"])
    def has_champion() -> bool:
        """Stop here (skipped) until a first champion is promoted."""
        return champion_ready(PLATFORM_HOME)

    @task(outlets=[SCORES], execution_timeout=TIMEOUTS["scoring"])
    def score_and_plan(params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Segments and the scored, planned table published to the lake."""
        return score_customers(PLATFORM_HOME, (params or {}).get("budget_eur"))

    has_champion() >> score_and_plan()


spanishgas_scoring()
