"""The feature store's operations: apply the definitions, materialize to the online store, build
point-in-time training sets and read online vectors. The same calls serve both profiles."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from spanishgas.errors import service_call
from spanishgas.feature_store.definitions import (
    JOIN_KEY,
    MODEL_SERVICE,
    TIMESTAMP_FIELD,
    build_definitions,
)
from spanishgas.feature_store.offline import (
    ensure_database,
    last_load,
    materialized_load,
    record_materialized_load,
)

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

    from spanishgas.settings import Settings


def get_store(settings: Settings) -> FeatureStore:
    """A Feast ``FeatureStore`` for the settings' profile (creates what the profile needs to exist)."""
    from pathlib import Path

    from feast import FeatureStore

    from spanishgas.feature_store.config import repo_config

    if settings.profile == "local":
        Path(str(settings.feast.local_dir)).mkdir(parents=True, exist_ok=True)
    else:
        ensure_database(settings)
    return FeatureStore(config=repo_config(settings))


def apply(settings: Settings, store: FeatureStore | None = None) -> dict[str, list[str]]:
    """Register the entity, source, feature views and services; removes views no longer defined."""
    store = store or get_store(settings)
    defs = build_definitions(settings)
    known_views = {v.name for v in store.list_feature_views()}
    stale = [store.get_feature_view(n) for n in sorted(known_views - set(defs.views))]
    store.apply(defs.objects(), objects_to_delete=stale, partial=not stale)  # type: ignore[arg-type]
    return {
        "entities": [defs.entity.name],
        "feature_views": list(defs.views),
        "feature_services": [s.name for s in defs.services],
        "removed": [v.name for v in stale],
    }


@dataclass(frozen=True)
class MaterializeReport:
    """What one materialization did."""

    start: str
    end: str
    feature_views: list[str]
    seconds: float


def materialize(
    settings: Settings,
    start: datetime | None = None,
    end: datetime | None = None,
    store: FeatureStore | None = None,
) -> MaterializeReport:
    """Copy the latest features of every customer into the online store.

    Incremental by default: each view continues from where its last materialization ended (or from
    one TTL before the newest loaded snapshot the first time) up to just after the newest snapshot.
    The data describe past months, so "now" is not a useful end: the newest loaded snapshot is. After a
    new load (a corrected gold run may rewrite snapshots Feast already copied), the whole TTL window is
    copied again, so the online store never keeps values the offline store no longer has. Redis keeps a
    value whose snapshot time is not newer than the stored one, so when a load ends no later than the
    one materialized before (a correction, not a new month), the customers' Redis rows are cleared first:
    the API answers "no features" until the copy finishes (seconds; docs/feature_store.md).

    Nothing records a copy as done before it is: when Redis or Postgres goes away half-way (or the process
    is killed), the online store may hold part of the copy, and the next run copies the same window again
    (ServiceUnavailable says so).
    """
    if settings.profile == "local":
        return _copy_to_online(settings, store or get_store(settings), start, end)
    redis, pg = settings.redis, settings.postgres
    again = "nothing is recorded as materialized: the next `spanishgas features materialize` copies the window again"
    with (
        service_call("Redis", f"{redis.host}:{redis.port}", again, clients=("redis",)),
        # the offline store (psycopg) and Feast's SQL registry (SQLAlchemy) are both on Postgres
        service_call("Postgres", f"{pg.host}:{pg.port}", again, clients=("psycopg", "psycopg2", "sqlalchemy")),
    ):
        return _copy_to_online(settings, store or get_store(settings), start, end)


def _copy_to_online(
    settings: Settings, store: FeatureStore, start: datetime | None, end: datetime | None
) -> MaterializeReport:
    """:func:`materialize`'s copy: the window of each view, then the record of what was copied."""
    load = last_load(settings)
    if end is None:
        end = datetime.fromisoformat(load.last_event) + timedelta(seconds=1)
    end = _utc(end)
    ttl = timedelta(days=settings.feast.ttl_days)
    started = time.perf_counter()
    views = store.list_feature_views()
    if start is not None:
        store.materialize(_utc(start), end, feature_views=[v.name for v in views])
        done = [v.name for v in views]
        first = _utc(start)
    else:
        before = materialized_load(settings)
        reloaded = before is None or before["loaded_at"] != load.loaded_at
        if reloaded and before is not None and load.last_event <= before["last_event"]:
            clear_online_store(settings, store)
        # Group views by their start so views that share one go through a single call.
        by_start: dict[datetime, list[str]] = {}
        for view in views:
            intervals = view.materialization_intervals
            continues = intervals and not reloaded
            view_start = max(_utc(i[1]) for i in intervals) if continues else end - ttl - timedelta(seconds=1)
            if view_start < end:
                by_start.setdefault(view_start, []).append(view.name)
        from spanishgas.progress import steps

        with steps("materialize", total=len(by_start)) as step:
            for view_start, names in sorted(by_start.items()):
                store.materialize(view_start, end, feature_views=names)
                step(f"{', '.join(names)} from {view_start:%Y-%m-%d}")
        done = [n for names in by_start.values() for n in names]
        first = min(by_start) if by_start else end
    record_materialized_load(settings, load)
    return MaterializeReport(first.isoformat(), end.isoformat(), done, round(time.perf_counter() - started, 2))


def clear_online_store(settings: Settings, store: FeatureStore) -> None:
    """Remove every customer's online rows where a rewrite with the same snapshot times would be ignored
    (Redis). SQLite replaces rows on write, so the local profile needs nothing."""
    if settings.profile == "local":
        return
    from feast.infra.online_stores.redis import RedisOnlineStore

    RedisOnlineStore().delete_entity_values(store.config, [JOIN_KEY])


def training_set(
    settings: Settings,
    entity_df: pd.DataFrame,
    service: str = MODEL_SERVICE,
    store: FeatureStore | None = None,
) -> pd.DataFrame:
    """Point-in-time features of ``service`` for each (customer, timestamp) row of ``entity_df``.

    Returns exactly the rows of ``entity_df`` in its order, with every extra column (labels) kept:
    Feast's file store drops entity rows with no feature match while Postgres keeps them with nulls, so
    the result is re-aligned on the entity rows and both profiles give the same frame.
    """
    import pandas as pd

    store = store or get_store(settings)
    if JOIN_KEY not in entity_df or TIMESTAMP_FIELD not in entity_df:
        raise ValueError(f"the entity frame needs {JOIN_KEY!r} and {TIMESTAMP_FIELD!r} columns")
    entities = entity_df.reset_index(drop=True).copy()
    entities[TIMESTAMP_FIELD] = pd.to_datetime(entities[TIMESTAMP_FIELD], utc=True)
    feature_service = store.get_feature_service(service)
    # Features are a function of (customer, time), so each distinct pair is asked for once and joined
    # back onto every entity row. Only the keys go to the store (Postgres uploads them to a table and
    # knows no date types); labels and other columns stay here. The file store drops pairs it finds
    # nothing for and Postgres keeps them with nulls: the left join gives both the same rows.
    keys = [JOIN_KEY, TIMESTAMP_FIELD]
    pairs = entities[keys].drop_duplicates().reset_index(drop=True)
    found = store.get_historical_features(entity_df=pairs, features=feature_service).to_df()
    names = feature_columns(store, service)
    found[TIMESTAMP_FIELD] = pd.to_datetime(found[TIMESTAMP_FIELD], utc=True)
    found = found[[*keys, *names]].drop_duplicates(keys)
    result = entities.merge(found, on=keys, how="left", validate="many_to_one")
    for name in names:
        if result[name].dtype == object:
            continue
        result[name] = result[name].astype("float64")
    return result


def feature_columns(store: FeatureStore, service: str = MODEL_SERVICE) -> list[str]:
    """The feature names a service returns, in its order."""
    feature_service = store.get_feature_service(service)
    return [f.name for projection in feature_service.feature_view_projections for f in projection.features]


def online_features(
    store: FeatureStore, customer_ids: list[str], service: str = MODEL_SERVICE
) -> dict[str, dict[str, Any]]:
    """The online vector of each customer, by id (values are None where the store has nothing)."""
    feature_service = store.get_feature_service(service)
    response = store.get_online_features(
        features=feature_service, entity_rows=[{JOIN_KEY: c} for c in customer_ids]
    ).to_dict()
    ids = response.pop(JOIN_KEY)
    return {cid: {name: values[i] for name, values in response.items()} for i, cid in enumerate(ids)}


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def training_entities(settings: Settings, gold_run: str | None = None) -> pd.DataFrame:
    """The labelled (customer, as-of timestamp) rows of gold's ``churn_training_dataset``."""
    import pandas as pd

    from spanishgas.lake_reader import LakeReader

    lake = LakeReader.from_settings(settings)
    run_id = gold_run or last_load(settings).gold_run_id
    columns = [JOIN_KEY, "as_of_date", "label", "horizon_days", "label_date"]
    frame = lake.read_table("gold", run_id, "churn_training_dataset", columns=columns).to_pandas()
    frame[TIMESTAMP_FIELD] = pd.to_datetime(frame["as_of_date"]).dt.tz_localize(UTC)
    frame.attrs["gold_run_id"] = run_id
    return frame.sort_values([TIMESTAMP_FIELD, JOIN_KEY]).reset_index(drop=True)
