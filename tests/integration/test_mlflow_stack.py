"""The stack profile's registry: a real MLflow tracking server with a Postgres backend, started on
loopback as docker-compose.yml starts it, with Optuna studies in Postgres too."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from spanishgas.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _admin(postgres_dsn: str, statement: str) -> None:
    import psycopg2

    conn = psycopg2.connect(postgres_dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def mlflow_server(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """``mlflow server`` on a free loopback port, backed by fresh Postgres databases."""
    name = f"mlflow_test_{uuid.uuid4().hex[:8]}"
    _admin(postgres_dsn, f'CREATE DATABASE "{name}"')
    _admin(postgres_dsn, f'CREATE DATABASE "{name}_optuna"')
    artifacts = tmp_path_factory.mktemp("mlflow-artifacts")
    port = _free_port()
    log = (artifacts / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}",
            "--artifacts-destination",
            artifacts.as_uri(),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail(f"mlflow server did not start: {(artifacts / 'server.log').read_text()[-2000:]}")
        yield {"url": url, "optuna": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}_optuna"}
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        _admin(postgres_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _admin(postgres_dsn, f'DROP DATABASE IF EXISTS "{name}_optuna" WITH (FORCE)')


def test_register_promote_and_rollback_through_the_tracking_server(
    model_lake: Settings, mlflow_server: dict[str, str], tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    from spanishgas.model.registry import DECISIONS_EXPERIMENT, alias_version, assign_champion, promote, rollback
    from spanishgas.model.train import gate_rows, load_training_data, train

    settings = model_lake.model_copy(
        update={
            "mlflow_tracking_uri": mlflow_server["url"],
            "mlflow_registry_uri": mlflow_server["url"],
            "optuna_storage": mlflow_server["optuna"],
        }
    )
    data = load_training_data(settings, "E5")
    first = train(settings, "E5", 3, data=data)
    # the gate runs through the server (scores, baseline, a logged decision); its verdict on a few hundred
    # rows is a coin flip, so the champion is then assigned: aliases, history and rollback are under test
    verdict = promote(settings, gate_rows(settings, "E5"), floor=0.0, reason="test")
    assign_champion(settings, first.model_version, reason="test")
    second = train(settings, "E5", 3, data=data)  # resumes the Postgres-stored study: same model
    assign_champion(settings, second.model_version, reason="test")
    assert alias_version(settings, "champion") == second.model_version
    rollback(settings, reason="test")
    assert alias_version(settings, "champion") == first.model_version

    client = MlflowClient(tracking_uri=mlflow_server["url"])
    decisions = client.get_experiment_by_name(DECISIONS_EXPERIMENT)
    logged = client.search_runs([decisions.experiment_id])
    kinds = Counter(r.data.tags["decision"] for r in logged)
    first_kind = "promote" if verdict.promoted else "promotion-refused"
    assert kinds >= Counter([first_kind, "assign", "assign", "rollback"])  # every decision is on the server
    run = client.get_run(first.mlflow_run_id)
    assert run.data.params["gold_run_id"] == first.gold_run_id
    assert "model_card.md" in {a.path for a in client.list_artifacts(first.mlflow_run_id)}
    import optuna

    studies = optuna.get_all_study_summaries(storage=mlflow_server["optuna"])
    assert len(studies) == 1 and studies[0].n_trials == 3


def test_stack_scoring_writes_the_postgres_table(
    model_lake: Settings, mlflow_server: dict[str, str], postgres_dsn: str
) -> None:
    """In the stack profile the scored table also lands in Postgres, where the dashboard reads it."""
    import psycopg2

    from spanishgas.model.registry import alias_version
    from spanishgas.retention.job import run_score, run_segment
    from spanishgas.settings import PostgresSettings

    database = f"scores_test_{uuid.uuid4().hex[:8]}"
    settings = model_lake.model_copy(
        update={
            "profile": "stack",
            "mlflow_tracking_uri": mlflow_server["url"],
            "mlflow_registry_uri": mlflow_server["url"],
            "postgres": PostgresSettings(database=database),
        }
    )
    assert alias_version(settings, "champion") is not None  # promoted by the test above
    try:
        run_segment(settings)
        result = run_score(settings, 1000.0)
        assert result.postgres_table == f"postgres:{database}.customer_scores"
        conn = psycopg2.connect(postgres_dsn.replace("dbname=postgres", f"dbname={database}"))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*), count(DISTINCT customer_id), max(churn_probability) FROM customer_scores")
                rows, customers, top = cur.fetchone()
        finally:
            conn.close()
        assert rows == customers == result.rows and 0 < top <= 1
    finally:
        _admin(postgres_dsn, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_a_version_moves_from_staging_to_production_through_productions_gate(
    served: dict, mlflow_server: dict[str, str]
) -> None:
    """Staging's registry (the served world's) to production's (the tracking server): the whole training run
    comes along, the version is production's challenger and nothing serves until production's own gate says
    so; the import and the gate's decision are both recorded in production's registry."""
    from mlflow.tracking import MlflowClient

    from spanishgas.model.registry import CHALLENGER, CHAMPION, DECISIONS_EXPERIMENT, alias_version, load_version
    from spanishgas.model.test_scores import TEST_SCORES, read_scores
    from spanishgas.model.train import promote_challenger
    from spanishgas.model.transfer import SOURCE_REGISTRY, SOURCE_VERSION, import_version
    from spanishgas.monitoring.reference import load_reference

    staging = served["settings"]
    production = staging.model_copy(
        update={"mlflow_tracking_uri": mlflow_server["url"], "mlflow_registry_uri": mlflow_server["url"]}
    )
    champion_before = alias_version(production, CHAMPION)
    imported = import_version(production, str(staging.mlflow_registry_uri))
    assert imported.source_version == served["version"]
    assert alias_version(production, CHALLENGER) == imported.version
    assert alias_version(production, CHAMPION) == champion_before  # an import alone moves no champion

    here, there = load_version(production, CHALLENGER), load_version(staging, CHAMPION)
    assert here.tags[SOURCE_VERSION] == served["version"] and here.tags[SOURCE_REGISTRY] == staging.mlflow_registry_uri
    assert here.tags["experiment_set"] == there.tags["experiment_set"]
    _, sample = load_reference(production, here.run_id, here.version)  # drift's reference came along
    assert len(sample) > 0 and here.model.features == there.model.features
    assert (here.model.predict_proba(sample) == there.model.predict_proba(sample)).all()
    assert read_scores(here.run_id, TEST_SCORES) is not None  # and the test rows' scores (the app's curves)

    verdict = promote_challenger(production, floor=0.0, reason="moved from staging")
    assert alias_version(production, CHAMPION) == (imported.version if verdict.promoted else champion_before)
    client = MlflowClient(tracking_uri=mlflow_server["url"])
    decisions = client.get_experiment_by_name(DECISIONS_EXPERIMENT)
    kinds = [r.data.tags["decision"] for r in client.search_runs([decisions.experiment_id], order_by=["start_time"])]
    assert kinds[-2:] == ["import", "promote" if verdict.promoted else "promotion-refused"]
