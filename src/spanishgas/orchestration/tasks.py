"""The lifecycle's steps as the DAG tasks call them: each runs library stages and returns a small
JSON-ready summary (the task's XCom). No Airflow here, so every step runs and is tested without it."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spanishgas.settings import Settings

log = logging.getLogger(__name__)

# A stage that runs longer than this is stuck (full scale: ETL about 5 minutes, training with 50 trials
# well under an hour); the task fails and is retried.
TIMEOUTS = {
    "sensor": timedelta(days=7),
    "spark": timedelta(hours=2),
    "features": timedelta(hours=1),
    "training": timedelta(hours=4),
    "scoring": timedelta(hours=1),
    "monitoring": timedelta(minutes=30),
    "quick": timedelta(minutes=10),
}


@contextmanager
def in_platform(home: str | Path) -> Iterator[Settings]:
    """The settings as `spanishgas` reads them in the platform folder: relative defaults (``data/``,
    ``.env``, ``great_expectations/``) mean the same for a task as for a person there."""
    from spanishgas.settings import get_settings

    before = os.getcwd()
    os.chdir(home)
    get_settings.cache_clear()
    try:
        yield get_settings()
    finally:
        os.chdir(before)
        get_settings.cache_clear()


def dag_defaults(owner: str) -> dict[str, Any]:
    """What every DAG of the platform shares: a fixed start in the past, no catch-up, one run at a time
    (each stage publishes runs the next one reads), and the tasks' owner, retries and retry delay."""
    from datetime import UTC, datetime

    return {
        "start_date": datetime(2024, 1, 1, tzinfo=UTC),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": task_defaults(owner),
    }


def task_defaults(owner: str) -> dict[str, Any]:
    """Owner, retries and retry delay every task of a DAG gets (timeouts are set per task)."""
    from spanishgas.settings import get_settings

    orchestration = get_settings().orchestration
    return {
        "owner": owner,
        "retries": orchestration.task_retries,
        "retry_delay": timedelta(seconds=orchestration.retry_delay_s),
    }


def spark_submit_conf(settings: Settings) -> dict[str, str]:
    """Spark configuration for spark-submit: the platform's, without what spark-submit sets itself."""
    from spanishgas.spark import spark_conf

    return {k: v for k, v in spark_conf(settings).items() if k != "spark.driver.memory"}


def spark_submit_env() -> dict[str, str]:
    """The driver runs this interpreter (so it sees the installed platform), and spark-submit is found
    beside it even when the Airflow worker's PATH lacks the virtualenv."""
    import sys

    bin_dir = str(Path(sys.executable).parent)
    return {
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
    }


def spark_connection(settings: Settings) -> str:
    """The Airflow connection (JSON, for ``AIRFLOW_CONN_SPARK_DEFAULT``) submitting to the settings'
    Spark master: ``local[*]`` out of the box, ``spark://host:7077`` or ``k8s://...`` in a stack."""
    import json

    return json.dumps({"conn_type": "spark", "host": settings.spark.master})


def claim_delivery(home: str | Path, delivery: str) -> str:
    """Record the delivery as handed to the medallion DAG; returns its folder."""
    from spanishgas.orchestration.landing import claim, landing_paths

    with in_platform(home) as settings:
        _, claims = landing_paths(settings, Path(home))
        claim(claims, Path(delivery))
    return delivery


def refresh_features(home: str | Path) -> dict[str, Any]:
    """Load the newest gold run into the offline store, apply the definitions, materialize online."""
    from spanishgas.feature_store.offline import load_offline
    from spanishgas.feature_store.store import apply, get_store, materialize

    with in_platform(home) as settings:
        loaded = load_offline(settings)
        store = get_store(settings)
        applied = apply(settings, store)
        materialized = materialize(settings, store=store)
    return plain(
        {
            "gold_run_id": loaded.gold_run_id,
            "rows": loaded.rows,
            "feature_views": applied["feature_views"],
            "materialized": [materialized.start, materialized.end],
        }
    )


def train_and_gate(
    home: str | Path, experiment: str | None, trials: int | None, floor: float | None, reason: str
) -> dict[str, Any]:
    """Train a challenger and put it through the promotion gate; ``promoted`` says whether it is the
    new champion (a refusal is an outcome, not a failure)."""
    from spanishgas.model.train import promote_challenger, train

    with in_platform(home) as settings:
        report = train(settings, experiment, trials)
        gate = promote_challenger(settings, floor=floor, reason=reason, experiment=report.experiment)
    return plain(
        {
            "promoted": gate.promoted,
            "version": report.model_version,
            "experiment": report.experiment,
            "gold_run_id": report.gold_run_id,
            "metrics": {k: v for k, v in report.test.items() if isinstance(v, int | float)},
            "gate": asdict(gate),
        }
    )


def champion_ready(home: str | Path) -> bool:
    """Whether a champion is registered. A fresh platform's first delivery has none yet: scoring then
    waits (a skip, not a failure) until the first promotion, which schedules it again."""
    from spanishgas.model.registry import CHAMPION, alias_version

    with in_platform(home) as settings:
        version = alias_version(settings, CHAMPION)
    if version is None:
        log.warning(
            "no champion model yet, nothing to score: trigger spanishgas_training (or run `spanishgas train` "
            "and `spanishgas promote`); the first promotion schedules this DAG again"
        )
        return False
    log.info("scoring with champion v%s", version)
    return True


def new_data_since_training(home: str | Path) -> bool:
    """Whether the feature store holds a gold run the newest challenger was not trained on. Drift the
    labelled history does not show yet cannot be trained away: retraining on the same gold run gives the
    same model, so a second request for it waits for the next delivery instead of looping."""
    from spanishgas.feature_store.offline import last_load
    from spanishgas.model.registry import CHALLENGER, alias_tags

    with in_platform(home) as settings:
        loaded = last_load(settings).gold_run_id
        trained = (alias_tags(settings, CHALLENGER) or {}).get("gold_run_id")
    if trained == loaded:
        log.warning("the newest challenger was already trained on gold run %s: retraining waits for new data", loaded)
        return False
    log.info("retraining on gold run %s (newest challenger: %s)", loaded, trained or "none")
    return True


def score_customers(home: str | Path, budget_eur: float | None) -> dict[str, Any]:
    """Segments, batch scores and the retention plan for the newest snapshot."""
    from spanishgas.retention.job import run_score, run_segment

    with in_platform(home) as settings:
        segments = run_segment(settings)
        scores = run_score(settings, budget_eur)
    return plain({"run_id": scores.run_id, "rows": scores.rows, "segments": segments, "plan": scores.summary})


def retrain_request(summary: dict[str, Any]) -> dict[str, Any]:
    """What the drift Asset's event carries: the monitoring run, the model version and the reasons."""
    decision = summary["decision"]
    return {
        "monitoring_run_id": summary["run_id"],
        "model_version": summary["model_version"],
        "snapshot_date": summary["snapshot_date"],
        "reasons": decision["reasons"],
        "explanations": decision["explanations"],
    }


def monitor(home: str | Path) -> dict[str, Any]:
    """One monitoring run with its metrics pushed; returns the run's summary with the decision."""
    from spanishgas.monitoring.job import run_monitor

    with in_platform(home) as settings:
        result = run_monitor(settings, push=True)
    return plain(result.summary())


def plain(value: Any) -> Any:
    """JSON-ready data (numpy numbers, dates) for an XCom or an Asset event's metadata."""
    import json

    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
