"""The feature store on both profiles: local (file offline store, SQLite online store) and stack (real
Postgres offline store and SQL registry, real Redis online store on loopback)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from spanishgas.feature_registry import feature_names
from spanishgas.settings import FeastSettings, RedisSettings, Settings

pytestmark = pytest.mark.integration

PROFILES = ["local", "stack"]
# The tests own this Redis database: it is flushed before and after each stack test.
TEST_REDIS_DB = 15
TTL_DAYS = 30


def _drop_database(postgres_dsn: str, database: str) -> None:
    import psycopg2

    conn = psycopg2.connect(postgres_dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        conn.close()


@pytest.fixture(params=PROFILES)
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings of a fresh, empty feature store on one profile (its own project, database and Redis db)."""
    profile = request.param
    name = f"t{uuid.uuid4().hex[:10]}"
    feast = FeastSettings(project=name, ttl_days=TTL_DAYS, local_dir=tmp_path / "feature_store", database=name)
    if profile == "local":
        yield Settings(profile="local", data_root=tmp_path, feast=feast)
        return
    dsn = request.getfixturevalue("postgres_dsn")
    request.getfixturevalue("redis_url")
    import redis

    settings = Settings(
        profile="stack",
        data_root=tmp_path,
        lake_uri=str(tmp_path / "lake"),
        feast=feast,
        redis=RedisSettings(db=TEST_REDIS_DB),
    )
    client = redis.Redis(host=settings.redis.host, port=settings.redis.port, db=TEST_REDIS_DB)
    client.flushdb()
    yield settings
    client.flushdb()
    _drop_database(dsn, name)


# ---------------------------------------------------------------- point-in-time oracle

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def _oracle_rows() -> list[dict[str, Any]]:
    """Feature rows with backfills, ties broken by created time, late corrections and TTL edges."""
    c1, c2, c3 = T0 + 40 * DAY, T0 + 70 * DAY, T0 + 200 * DAY
    return [
        # A: a monthly history, a corrected February row (same event time, created later) and a March row
        # that arrived late, after everything else (a backfill).
        {"customer_id": "A", "event_timestamp": T0, "created_timestamp": c1},
        {"customer_id": "A", "event_timestamp": T0 + 31 * DAY, "created_timestamp": c1},
        {"customer_id": "A", "event_timestamp": T0 + 31 * DAY, "created_timestamp": c2},
        {"customer_id": "A", "event_timestamp": T0 + 60 * DAY, "created_timestamp": c3},
        # B: one row; TTL edges around it.
        {"customer_id": "B", "event_timestamp": T0 + 10 * DAY, "created_timestamp": c1},
        # C: a row in the future of some entity rows.
        {"customer_id": "C", "event_timestamp": T0 + 120 * DAY, "created_timestamp": c1},
        # E: two identical event and created times never happen in gold; a tie on event time only.
        {"customer_id": "E", "event_timestamp": T0 + 5 * DAY, "created_timestamp": c2},
        {"customer_id": "E", "event_timestamp": T0 + 5 * DAY, "created_timestamp": c1},
    ]


def _feature_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Every column the feature views need; each value tells its row and feature apart."""
    names = feature_names()
    columns: dict[str, list[Any]] = {
        k: [r[k] for r in rows] for k in ("customer_id", "event_timestamp", "created_timestamp")
    }
    columns["segment"] = [f"seg{i}" for i in range(len(rows))]
    columns["province_code"] = ["28"] * len(rows)
    columns["revenue_avg_12m"] = [float(i) for i in range(len(rows))]
    for j, name in enumerate(names):
        columns[name] = [i * 1000.0 + j for i in range(len(rows))]
    ts = pa.timestamp("us", tz="UTC")
    schema = pa.schema(
        [
            ("customer_id", pa.string()),
            ("event_timestamp", ts),
            ("created_timestamp", ts),
            ("segment", pa.string()),
            ("province_code", pa.string()),
            ("revenue_avg_12m", pa.float64()),
        ]
        + [(n, pa.float64()) for n in names]
    )
    return pa.table(columns, schema=schema)


def _entity_rows() -> pd.DataFrame:
    ttl = TTL_DAYS * DAY
    rows = [
        ("A", T0 - DAY),  # before any data: null
        ("A", T0),  # exactly at an event: that row
        ("A", T0 + 45 * DAY),  # tie on Feb event time: the later created row
        ("A", T0 + 45 * DAY),  # the same entity row twice: both kept
        ("A", T0 + 65 * DAY),  # the late-arriving March row
        ("B", T0 + 10 * DAY + ttl),  # exactly one TTL later: still valid
        ("B", T0 + 10 * DAY + ttl + timedelta(seconds=1)),  # past the TTL: null
        ("C", T0 + 119 * DAY),  # the only row is in the future: null
        ("C", T0 + 120 * DAY),  # at the event time: the row
        ("E", T0 + 6 * DAY),  # tie on event time: the later created row
        ("Z", T0 + 50 * DAY),  # unknown customer: kept, with nulls
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "event_timestamp"])
    frame["label"] = range(len(frame))
    return frame


def _brute_force_as_of(rows: list[dict[str, Any]], entities: pd.DataFrame, ttl: timedelta) -> list[int | None]:
    """Index of the row each entity row should get: the newest event at or before its time and within the
    TTL, ties broken by the newest created time; None when there is none."""
    chosen: list[int | None] = []
    for cid, ts in zip(entities["customer_id"], entities["event_timestamp"], strict=True):
        best: int | None = None
        for i, r in enumerate(rows):
            if r["customer_id"] != cid or not (ts - ttl <= r["event_timestamp"] <= ts):
                continue
            key = (r["event_timestamp"], r["created_timestamp"])
            if best is None or key > (rows[best]["event_timestamp"], rows[best]["created_timestamp"]):
                best = i
        chosen.append(best)
    return chosen


def test_point_in_time_join_matches_a_brute_force_oracle(store_settings: Settings) -> None:
    from spanishgas.feature_store.offline import write_offline_table
    from spanishgas.feature_store.store import apply, get_store, training_set

    rows = _oracle_rows()
    write_offline_table(store_settings, _feature_table(rows))
    store = get_store(store_settings)
    apply(store_settings, store)
    entities = _entity_rows()
    result = training_set(store_settings, entities, "call_center_v1", store=store)

    # Same rows, same order, labels kept, whichever offline store built it.
    assert len(result) == len(entities)
    assert result["label"].tolist() == entities["label"].tolist()
    expected = _brute_force_as_of(rows, entities, TTL_DAYS * DAY)
    assert expected.count(None) == 4, "the oracle frame must exercise null outcomes"
    names = feature_names()
    for pos, want in enumerate(expected):
        got = result.iloc[pos]
        if want is None:
            assert all(pd.isna(got[n]) for n in names), f"entity row {pos} should have no features"
            assert pd.isna(got["segment"])
            continue
        assert got["segment"] == f"seg{want}", f"entity row {pos}"
        for j, n in enumerate(names):
            assert math.isclose(got[n], want * 1000.0 + j), (pos, n, got[n])


def test_training_set_keeps_every_entity_row(store_settings: Settings) -> None:
    """The file store drops unmatched rows and Postgres keeps them: the platform returns them all."""
    from spanishgas.feature_store.offline import write_offline_table
    from spanishgas.feature_store.store import apply, get_store, training_set

    write_offline_table(store_settings, _feature_table(_oracle_rows()))
    store = get_store(store_settings)
    apply(store_settings, store)
    entities = pd.DataFrame({"customer_id": ["nobody", "A", "ghost"], "event_timestamp": [T0 + 2 * DAY] * 3})
    result = training_set(store_settings, entities, store=store)
    assert result["customer_id"].tolist() == ["nobody", "A", "ghost"]
    assert result[feature_names()].isna().all(axis=1).tolist() == [True, False, True]


# ---------------------------------------------------------------- on gold from the pipeline


@pytest.fixture
def loaded_store(store_settings: Settings, small_lake: dict[str, Any]) -> tuple[Settings, Any]:
    """The small lake's gold loaded, applied and materialized on one profile."""
    from spanishgas.feature_store.offline import load_offline
    from spanishgas.feature_store.store import apply, get_store, materialize

    settings = store_settings.model_copy(update={"lake_uri": small_lake["settings"].lake_uri})
    settings.feast.ttl_days = 62
    load_offline(settings)
    store = get_store(settings)
    apply(settings, store)
    materialize(settings, store=store)
    return settings, store


def test_online_vectors_equal_offline_vectors_after_materialization(loaded_store: tuple[Settings, Any]) -> None:
    from spanishgas.feature_store.offline import last_load
    from spanishgas.feature_store.store import feature_columns, online_features, training_set

    settings, store = loaded_store
    report = last_load(settings)
    latest = datetime.fromisoformat(report.last_event)
    gold = _gold_features(settings)
    current = gold[gold["event_timestamp"] == pd.Timestamp(latest)]
    customers = [*sorted(current["customer_id"].unique())[:40], "not-a-customer"]
    online = online_features(store, customers, "call_center_v1")
    offline = training_set(
        settings,
        pd.DataFrame({"customer_id": customers, "event_timestamp": [latest] * len(customers)}),
        "call_center_v1",
        store=store,
    ).set_index("customer_id")
    names = feature_columns(store, "call_center_v1")
    assert len(names) == len(feature_names()) + 3
    for cid in customers:
        for name in names:
            on, off = online[cid][name], offline.loc[cid, name]
            if off is None or (isinstance(off, float) and math.isnan(off)):
                assert on is None, (cid, name, on)
            elif isinstance(off, str):
                assert on == off, (cid, name)
            else:
                assert on is not None and math.isclose(on, off, rel_tol=0, abs_tol=0), (cid, name, on, off)
    assert all(v is None for v in online["not-a-customer"].values())


def _gold_features(settings: Settings) -> pd.DataFrame:
    from spanishgas.lake_reader import LakeReader

    lake = LakeReader.from_settings(settings)
    return lake.read_table("gold", lake.latest_run("gold"), "customer_features_asof").to_pandas()


def _offline_store_rows(settings: Settings) -> int:
    """Rows the offline store itself holds (the Parquet file, or the Postgres table)."""
    if settings.profile == "local":
        import pyarrow.parquet as pq

        from spanishgas.feature_store.offline import local_features_path

        return pq.read_metadata(local_features_path(settings)).num_rows
    from psycopg2 import sql

    from spanishgas.postgres import transaction

    with transaction(settings, settings.feast.database) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(settings.feast.offline_table)))
        return int(cur.fetchone()[0])


def test_load_is_idempotent_and_training_set_matches_gold(loaded_store: tuple[Settings, Any]) -> None:
    from spanishgas.feature_store.offline import load_offline
    from spanishgas.feature_store.store import materialize, training_entities, training_set

    settings, store = loaded_store
    again = load_offline(settings)  # same gold run: the store holds the same rows, not twice as many
    gold = _gold_features(settings)
    assert _offline_store_rows(settings) == again.rows == len(gold)
    entities = training_entities(settings)
    frame = training_set(settings, entities, store=store)
    assert len(frame) == len(entities) and frame["label"].sum() == entities["label"].sum()
    # every labelled row finds its own as-of snapshot: features equal gold's, value for value
    merged = frame.merge(gold, on=["customer_id", "as_of_date"], suffixes=("", "_gold"))
    assert len(merged) == len(frame)
    for name in feature_names():
        pd.testing.assert_series_equal(merged[name], merged[f"{name}_gold"], check_names=False)
    # a new load (here of the same run) is copied again in full once; after that there is nothing to do
    assert materialize(settings, store=store).feature_views != []
    assert materialize(settings, store=store).feature_views == []


def test_a_corrected_load_reaches_the_online_store(loaded_store: tuple[Settings, Any]) -> None:
    """A gold run that rewrites snapshots already materialized (same dates, new values) must not leave
    the old values online: incremental materialization alone would see nothing new to copy."""
    from dataclasses import replace

    from spanishgas.feature_store.offline import last_load, read_gold_features, record_load, write_offline_table
    from spanishgas.feature_store.store import materialize, online_features

    settings, store = loaded_store
    _, table = read_gold_features(settings)
    frame = table.to_pandas()
    latest = frame["event_timestamp"].max()
    customer = sorted(frame.loc[frame["event_timestamp"] == latest, "customer_id"])[0]
    name = next(f for f in feature_names() if pd.api.types.is_float_dtype(frame[f]))
    before = online_features(store, [customer], "call_center_v1")[customer][name]
    corrected = 12345.5
    assert before != corrected
    frame.loc[(frame["customer_id"] == customer) & (frame["event_timestamp"] == latest), name] = corrected
    write_offline_table(settings, pa.Table.from_pandas(frame, schema=table.schema, preserve_index=False))
    record_load(settings, replace(last_load(settings), loaded_at=datetime.now(UTC).isoformat()))
    materialize(settings, store=store)
    assert online_features(store, [customer], "call_center_v1")[customer][name] == corrected
