"""Crash safety: each stage killed with SIGKILL at a random point of its work, as the `spanishgas` command
Airflow runs, against the stack profile's real stores (the loopback Postgres, a Redis of the test's own,
a local lake and MLflow registry).

For every stage: a complete run first (what readers see then, and how long the work takes), then the
same command killed at a random moment between its first line of output and its end, then a rerun. After
the kill, readers must see exactly what they saw before (the previous published run still serves, nothing
half-published); the rerun must succeed. The seed is printed, so a failing draw can be replayed with
``SPANISHGAS_CRASH_SEED``.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RedisServer

pytestmark = pytest.mark.e2e

REPO = Path(__file__).parents[2]
CLI = [sys.executable, "-m", "spanishgas.cli"]
SEED = int(os.environ.get("SPANISHGAS_CRASH_SEED", random.SystemRandom().randrange(10**6)))


@dataclass
class Timing:
    """When a complete run printed its first and its last line (seconds after its start)."""

    first_output_s: float
    last_output_s: float


def _run(args: list[str], env: dict[str, str]) -> Timing:
    """Run a stage to its end; it must succeed."""
    started = time.monotonic()
    process = subprocess.Popen(
        [*CLI, *args], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    assert process.stdout is not None
    stamps, lines = [], []
    for line in process.stdout:
        stamps.append(time.monotonic() - started)
        lines.append(line.decode(errors="replace"))
    code = process.wait()
    assert code == 0, f"`spanishgas {' '.join(args)}` failed ({code}):\n{''.join(lines[-40:])}"
    assert stamps, f"`spanishgas {' '.join(args)}` printed nothing"
    return Timing(stamps[0], stamps[-1])


def _killed_at(args: list[str], env: dict[str, str], delay_s: float) -> bool:
    """Start the stage and SIGKILL its whole process group (the Spark JVM too) ``delay_s`` after its start.
    False when it had already finished by then (the kill missed)."""
    process = subprocess.Popen(
        [*CLI, *args], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        process.wait(timeout=delay_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return True
    assert process.returncode == 0, f"`spanishgas {' '.join(args)}` failed before the kill"
    return False


def crash_then_rerun(
    args: list[str],
    env: dict[str, str],
    seen: Callable[[], Any],
    rng: random.Random,
    whole: Callable[[Any, Any], bool] | None = None,
    changes: bool = True,
) -> None:
    """Complete run, a run killed at a random point of its work, a rerun; ``seen()`` is what readers see.

    After the kill readers must see exactly what they saw before, or (when the kill came after the stage
    had published, on its way out) a whole new publication as ``whole(before, after)`` checks it: never
    anything in between."""
    timing = _run(args, env)
    low, high = timing.first_output_s, timing.last_output_s
    for _ in range(4):
        before = seen()
        delay = rng.uniform(low, high)
        if _killed_at(args, env, delay):
            break
        high = delay  # it was faster this time: draw again below
    else:
        pytest.fail(f"`spanishgas {' '.join(args)}` always finished before the kill (last draw {delay:.1f} s)")
    after = seen()
    outcome = "readers see the previous output"
    if after != before:
        assert whole is not None and whole(before, after), f"a killed run left a half-published output: {after}"
        outcome = "it had published, whole"
    print(f"spanishgas {' '.join(args)}: killed {delay:.2f} s after its start (work {low:.1f}-{high:.1f} s): {outcome}")
    _run(args, env)
    if changes:
        assert seen() != after, "the rerun published nothing new"


def _one_more_run(before: Any, after: Any) -> bool:
    """A lake layer's whole publication: exactly one more published run (its manifest read back whole)."""
    return after[0][:-1] == before[0] and after[1]["run_id"] == after[0][-1]


# ---- what readers see, per kind of output


def _lake_runs(root: Path, layer: str) -> tuple[list[str], dict[str, Any]]:
    """The published runs of a layer and the newest one's manifest, read as every reader reads them."""
    from spanishgas.lake_reader import LakeReader

    lake = LakeReader(str(root))
    runs = lake.published_runs(layer)
    return runs, lake.manifest(layer, runs[-1])


def _wait_for_no_backends(dsn: str, database: str) -> None:
    """A killed client's backend ends (and its transaction rolls back) shortly after its socket closes."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        for _ in range(100):
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (database,)
                )
                if cur.fetchone()[0] == 0:
                    return
            time.sleep(0.1)
    finally:
        conn.close()


def _table_state(dsn: str, database: str, table: str, columns: str) -> tuple[Any, ...]:
    """Rows of a live table (and whether a staging table survived), as a reader of that database sees it."""
    import psycopg2

    _wait_for_no_backends(dsn, database)
    conn = psycopg2.connect(dsn.replace("dbname=postgres", f"dbname={database}"))
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*), {columns} FROM {table}")
            rows = cur.fetchone()
            cur.execute("SELECT to_regclass(%s)", (f"{table}__staging",))
            staging = cur.fetchone()[0]
        return (*rows, staging)
    finally:
        conn.close()


# ---- worlds


@pytest.fixture(scope="module")
def rng() -> random.Random:
    print(f"crash-safety seed {SEED} (SPANISHGAS_CRASH_SEED replays it)")
    return random.Random(SEED)


@pytest.fixture(scope="module")
def etl_world(spark, tmp_path_factory) -> tuple[Path, dict[str, str]]:  # type: ignore[no-untyped-def]
    """A small delivery (120 customers, seven months: gold has matured labels) with a published bronze,
    silver and gold run, and the env that points the command line at it. Small, because each layer runs
    three times here and Spark's fixed costs dominate."""
    from spanishgas.etl.pipeline import run_bronze, run_gold, run_silver
    from spanishgas.generator import GeneratorConfig, generate
    from spanishgas.settings import Settings

    root = tmp_path_factory.mktemp("crash-etl")
    generate(
        GeneratorConfig(
            customers=120,
            start=date(2024, 1, 1),
            end=date(2024, 7, 31),
            out_dir=root / "raw",
            truth_dir=root / "truth",
            workers=1,
        )
    )
    settings = Settings(data_root=root, gx_root=root / "great_expectations")
    run_bronze(settings, raw_dir=root / "raw", spark=spark)
    run_silver(settings, spark=spark)
    run_gold(settings, spark=spark)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPANISHGAS_")}
    env |= {
        "SPANISHGAS_DATA_ROOT": str(root),
        "SPANISHGAS_GX_ROOT": str(root / "great_expectations"),
        "SPANISHGAS_SPARK__MASTER": "local[2]",
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    return root, env


@pytest.fixture(scope="module")
def stack_world(model_lake, postgres_dsn, tmp_path_factory) -> Iterator[tuple[Path, dict[str, str]]]:  # type: ignore[no-untyped-def]
    """The model lake's published gold in the stack profile: Feast's offline store and the scores table in
    databases of their own on the loopback Postgres, the online store in a Redis of the test's own, MLflow
    and Optuna in SQLite files."""
    import psycopg2

    root = tmp_path_factory.mktemp("crash-stack")
    shutil.copytree(Path(str(model_lake.lake_uri)), root / "lake")
    redis = RedisServer(root)
    redis.start()
    tag = uuid.uuid4().hex[:8]
    databases = {"feast": f"crash_features_{tag}", "platform": f"crash_platform_{tag}"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPANISHGAS_")}
    env |= {
        "SPANISHGAS_PROFILE": "stack",
        "SPANISHGAS_DATA_ROOT": str(root),
        "SPANISHGAS_LAKE_URI": str(root / "lake"),
        "SPANISHGAS_GX_ROOT": str(root / "great_expectations"),
        "SPANISHGAS_FEAST_REPO_PATH": str(REPO / "feature_repo"),
        "SPANISHGAS_MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "SPANISHGAS_OPTUNA_STORAGE": f"sqlite:///{root / 'optuna.db'}",
        "SPANISHGAS_FEAST__DATABASE": databases["feast"],
        "SPANISHGAS_FEAST__PROJECT": f"crash_{tag}",
        "SPANISHGAS_POSTGRES__DATABASE": databases["platform"],
        "SPANISHGAS_REDIS__PORT": str(redis.port),
    }
    try:
        yield root, env
    finally:
        redis.stop()
        conn = psycopg2.connect(postgres_dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            for database in databases.values():
                cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.close()


# ---- the stages


@pytest.mark.parametrize("layer", ["bronze", "silver", "gold"])
def test_a_killed_layer_run_publishes_nothing_and_the_rerun_succeeds(etl_world, layer: str, rng) -> None:  # type: ignore[no-untyped-def]
    root, env = etl_world
    crash_then_rerun([layer], env, lambda: _lake_runs(root / "lake", layer), rng, _one_more_run)
    # the killed run's folder may be there (its parts, no marker); readers never list it
    from spanishgas.lake_reader import LakeReader

    lake = LakeReader(str(root / "lake"))
    assert len(lake.run_ids(layer)) >= len(lake.published_runs(layer))


def test_killed_stack_stages_leave_the_previous_output_serving(stack_world, postgres_dsn, rng) -> None:  # type: ignore[no-untyped-def]
    """Feature load, materialize, train, score and monitor in the order a delivery runs them (each needs the
    one before); the model's champion is set between train and score the way an operator does it."""
    from spanishgas.feature_store.definitions import CREATED_FIELD
    from spanishgas.feature_store.offline import LOAD_LOG_TABLE

    root, env = stack_world
    feast_db, platform_db = env["SPANISHGAS_FEAST__DATABASE"], env["SPANISHGAS_POSTGRES__DATABASE"]

    def offline() -> tuple[Any, ...]:
        features = _table_state(postgres_dsn, feast_db, "customer_features", f"max({CREATED_FIELD})")
        return features, _table_state(postgres_dsn, feast_db, LOAD_LOG_TABLE, "max(id)")

    def new_load(before: Any, after: Any) -> bool:
        # the same gold run again: the same rows (created when gold was published), with one more log row,
        # which the swap's transaction writes, so the table was replaced whole
        (rows, created, _), (loads, last, _) = before
        (rows_now, created_now, staging), (loads_now, last_now, _) = after
        same_rows = (rows_now, created_now, staging) == (rows, created, None)
        return same_rows and (loads_now, last_now) == (loads + 1, last + 1)

    crash_then_rerun(["features", "load"], env, offline, rng, new_load)
    _run(["features", "apply"], env)

    online = _online_state(env)
    # the same window each time, so every run copies for real and readers must see the same vectors
    _run(["features", "materialize"], env)
    window = _last_window(env)
    crash_then_rerun(
        ["features", "materialize", "--start", window[0], "--end", window[1]], env, online, rng, changes=False
    )
    assert online(), "the online store holds no customer"

    def new_challenger(before: Any, after: Any) -> bool:
        return after[0] == before[0] and after[1] not in (None, before[1])

    crash_then_rerun(["train", "--trials", "2"], env, lambda: _aliases(env), rng, new_challenger)
    _run(["promote", "--floor", "0", "--reason", "crash-safety test"], env)
    _run(["segment"], env)

    def scores() -> tuple[Any, ...]:
        state = _table_state(postgres_dsn, platform_db, "customer_scores", "min(run_id), max(run_id)")
        return _lake_runs(root / "lake", "scores")[0], state

    def new_scores(before: Any, after: Any) -> bool:  # one more run in the lake, and Postgres holds it
        (runs, _), (runs_now, (_, first, last, staging)) = before, after
        return runs_now[:-1] == runs and first == last == runs_now[-1] and staging is None

    crash_then_rerun(["score"], env, scores, rng, new_scores)
    monitoring = lambda: _lake_runs(root / "lake", "monitoring")  # noqa: E731
    crash_then_rerun(["monitor", "--no-push"], env, monitoring, rng, _one_more_run)


def _settings(env: dict[str, str]) -> Any:
    from spanishgas.settings import Settings

    saved = dict(os.environ)
    try:
        os.environ.update({k: v for k, v in env.items() if k.startswith("SPANISHGAS_")})
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _online_state(env: dict[str, str]) -> Callable[[], dict[str, bytes]]:
    """Every customer's online vector fingerprint, read straight from Redis as the API reads it."""

    def state() -> dict[str, bytes]:
        from spanishgas.feature_store.store import get_store
        from spanishgas.serving.online import RedisReader

        settings = _settings(env)
        reader = RedisReader.from_store(get_store(settings), settings)
        ids = reader.customer_ids()
        return {v.customer_id: v.fingerprint for v in reader.read(ids)}

    return state


def _last_window(env: dict[str, str]) -> tuple[str, str]:
    """The window the last materialization copied (from the feature views' recorded intervals)."""
    from spanishgas.feature_store.store import get_store

    store = get_store(_settings(env))
    intervals = [i for v in store.list_feature_views() for i in v.materialization_intervals]
    return min(i[0] for i in intervals).isoformat(), max(i[1] for i in intervals).isoformat()


def _aliases(env: dict[str, str]) -> tuple[str | None, str | None]:
    from spanishgas.model.registry import alias_version

    settings = _settings(env)
    return alias_version(settings, "champion"), alias_version(settings, "challenger")
