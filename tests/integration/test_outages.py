"""Servers that go away in the middle of a stage: Postgres during the feature load and during the scores
table swap, Redis during a materialization, the MLflow tracking server at the end of a training. Each is a
real server of the test's own on loopback, stopped the way a crash stops it; each stage runs as the
`spanishgas` command. Every time: a clear one-line error naming the server, what readers saw before is
intact, and the next run repairs or completes what the failed one could not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from spanishgas.settings import Settings
from tests.conftest import MlflowServer, PostgresServer, RedisServer
from tests.integration.conftest import REPO, settings_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLI = [sys.executable, "-m", "spanishgas.cli"]


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, *args], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([*CLI, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"`spanishgas {' '.join(args)}` failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def _failed_clearly(process: subprocess.Popen[str], server: str) -> str:
    """The stage ended with exit code 1 and one red line naming the server, without a traceback."""
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 1, output[-3000:]
    assert f"{server} at " in output and "unreachable or went away" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    return output


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPANISHGAS_")}
    stores = {
        "SPANISHGAS_LAKE_URI": str(settings.lake_uri),
        "SPANISHGAS_POSTGRES__PORT": str(settings.postgres.port),
        "SPANISHGAS_REDIS__PORT": str(settings.redis.port),
        "SPANISHGAS_FEAST__DATABASE": settings.feast.database,
        "SPANISHGAS_FEAST__PROJECT": settings.feast.project,
    }
    return env | settings_env(settings) | stores | extra


def _wait_until(condition: Callable[[], bool], what: str, process: subprocess.Popen[str], seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            pytest.fail(f"the stage ended before {what}:\n{(process.stdout.read() if process.stdout else '')[-3000:]}")
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"timed out waiting for {what}")


# ---- Postgres


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.create()
    server.start()
    try:
        yield server
    finally:
        server.remove()


def _one_row(dsn: str, query: str) -> tuple[Any, ...]:
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return tuple(cur.fetchone())
    finally:
        conn.close()


def _swap_waits_on_a_reader(postgres: PostgresServer, database: str, table: str) -> Callable[[], bool]:
    """Hold a reader's lock on ``table`` (as a dashboard query would) so the stage's swap waits behind it
    with its new rows loaded but not committed; returns the check that the stage got there."""
    import psycopg2

    reader = psycopg2.connect(postgres.dsn(database))
    reader.cursor().execute(f"SELECT 1 FROM {table} LIMIT 1")  # the transaction stays open: lock held

    def waiting() -> bool:
        assert not reader.closed  # this closure keeps the reader's connection, and its lock, alive
        rows = _one_row(
            postgres.dsn(database),
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE 'ALTER TABLE%'",
        )
        return rows[0] > 0

    return waiting


def test_postgres_lost_during_the_feature_load_keeps_the_old_table(model_lake: Settings, postgres) -> None:  # type: ignore[no-untyped-def]
    from spanishgas.feature_store.definitions import CREATED_FIELD
    from spanishgas.feature_store.offline import LOAD_LOG_TABLE
    from spanishgas.settings import PostgresSettings

    feast = model_lake.feast.model_copy(update={"database": "outage_features", "project": "outage_load"})
    settings = model_lake.model_copy(
        update={"profile": "stack", "postgres": PostgresSettings(port=postgres.port), "feast": feast}
    )
    env = _env(settings)
    _run(["features", "load"], env)
    # loads counted, not numbered: a crashed server's sequences skip ahead on recovery
    state = f"SELECT count(*), max({CREATED_FIELD}), (SELECT count(*) FROM {LOAD_LOG_TABLE}) FROM customer_features"
    before = _one_row(postgres.dsn("outage_features"), state)

    waiting = _swap_waits_on_a_reader(postgres, "outage_features", "customer_features")
    load = _start(["features", "load"], env)
    _wait_until(waiting, "the load's swap", load)
    postgres.stop_immediately()
    output = _failed_clearly(load, "Postgres")
    assert f"127.0.0.1:{postgres.port}" in output and "keeps its previous rows" in output

    postgres.start()
    assert _one_row(postgres.dsn("outage_features"), state) == before
    staging = _one_row(postgres.dsn("outage_features"), "SELECT to_regclass('customer_features__staging')")
    assert staging == (None,)
    _run(["features", "load"], env)
    after = _one_row(postgres.dsn("outage_features"), state)
    # the same gold run loaded again: the same rows (stamped with gold's publication), one more load logged
    assert after[:2] == before[:2] and after[2] == before[2] + 1


def test_postgres_lost_during_the_scores_swap_publishes_nothing(
    served: dict[str, Any], postgres, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from spanishgas.lake_reader import LakeReader
    from spanishgas.settings import PostgresSettings

    base: Settings = served["settings"]
    lake = tmp_path / "lake"
    shutil.copytree(Path(str(base.lake_uri)), lake)  # this test's scores runs stay out of the shared world
    settings = base.model_copy(
        update={"profile": "stack", "lake_uri": str(lake), "postgres": PostgresSettings(port=postgres.port)}
    )
    env = _env(settings)
    _run(["score"], env)
    state = "SELECT count(*), min(run_id), max(run_id) FROM customer_scores"
    before = _one_row(postgres.dsn("spanishgas"), state)
    published = LakeReader(str(lake)).published_runs("scores")

    waiting = _swap_waits_on_a_reader(postgres, "spanishgas", "customer_scores")
    score = _start(["score"], env)
    _wait_until(waiting, "the scores swap", score)
    postgres.stop_immediately()
    _failed_clearly(score, "Postgres")
    # the lake's marker comes after the swap: the failed run is not published there either
    assert LakeReader(str(lake)).published_runs("scores") == published

    postgres.start()
    assert _one_row(postgres.dsn("spanishgas"), state) == before
    _run(["score"], env)
    after = _one_row(postgres.dsn("spanishgas"), state)
    newest = LakeReader(str(lake)).published_runs("scores")[-1]
    assert after[0] == before[0] and after[1] == after[2] == newest != before[1]


# ---- Redis


def _commands(redis_port: int) -> int:
    import redis

    return int(redis.Redis(port=redis_port).info("stats")["total_commands_processed"])


def test_redis_lost_during_materialize_is_repaired_by_the_next_one(  # type: ignore[no-untyped-def]
    model_lake: Settings, postgres_dsn: str, tmp_path: Path
) -> None:
    import psycopg2

    from spanishgas.feature_store.store import get_store
    from spanishgas.serving.online import RedisReader
    from spanishgas.settings import RedisSettings

    server = RedisServer(tmp_path, append_only=True)  # acknowledged writes survive the kill
    server.start()
    database = "outage_materialize"
    settings = model_lake.model_copy(
        update={
            "profile": "stack",
            "redis": RedisSettings(port=server.port),
            "feast": model_lake.feast.model_copy(update={"database": database, "project": "outage"}),
        }
    )
    env = _env(settings)

    def online() -> dict[str, bytes]:
        reader = RedisReader.from_store(get_store(settings), settings)
        return {v.customer_id: v.fingerprint for v in reader.read(reader.customer_ids())}

    try:
        for args in (["features", "load"], ["features", "apply"], ["features", "materialize"]):
            _run(args, env)
        complete = online()
        # a new load of the same gold run: the next materialize clears the customers, then copies again
        _run(["features", "load"], env)
        start = _commands(server.port)
        materialize = _start(["features", "materialize"], env)
        _wait_until(lambda: _commands(server.port) > start + 500, "the copy into Redis", materialize)
        server.process.kill()  # type: ignore[union-attr]
        server.process.wait()  # type: ignore[union-attr]
        output = _failed_clearly(materialize, "Redis")
        assert "copies the window again" in output

        server.start()  # the same data folder: what Redis had acknowledged before it died
        assert online() != complete, "the kill did not land inside the copy"
        _run(["features", "materialize"], env)
        assert online() == complete
    finally:
        server.stop()
        conn = psycopg2.connect(postgres_dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.close()


# ---- MLflow


def test_mlflow_lost_at_the_end_of_training_moves_no_alias(model_lake: Settings, tmp_path: Path) -> None:
    from spanishgas.model.registry import alias_version

    server = MlflowServer(tmp_path)
    server.start()
    settings = model_lake.model_copy(
        update={
            "mlflow_tracking_uri": server.url,
            "mlflow_registry_uri": server.url,
            "optuna_storage": f"sqlite:///{tmp_path / 'optuna.db'}",
        }
    )
    # one attempt, short timeouts: the client's default retries back off for minutes
    env = _env(settings, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="10")
    try:
        _run(["train", "--trials", "2"], env)
        _run(["promote", "--floor", "0", "--reason", "outage test"], env)
        aliases = (alias_version(settings, "champion"), alias_version(settings, "challenger"))

        # a second training on more trials: killed as its last trial ends, before anything is logged
        train = _start(["train", "--trials", "4"], env)
        lines: list[str] = []
        assert train.stdout is not None
        for line in train.stdout:
            lines.append(line)
            if "training trials 2/2" in line:
                server.kill()
                break
        else:
            pytest.fail("the training never reported its last trial:\n" + "".join(lines[-40:]))
        output = "".join(lines) + _failed_clearly(train, "The MLflow tracking server")
        assert "no alias moved" in output

        server.start()
        assert (alias_version(settings, "champion"), alias_version(settings, "challenger")) == aliases
        # the same command again: the finished trials are reused (no new trial runs) and the model registered
        again = _run(["train", "--trials", "4"], env)
        assert "training trials" not in again
        challenger = alias_version(settings, "challenger")
        assert challenger not in (None, aliases[1]) and alias_version(settings, "champion") == aliases[0]
    finally:
        server.kill()
