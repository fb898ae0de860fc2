"""Worlds shared by the integration tests (built once per session): a served champion with its batch
scores, and the same features in the stack profile's stores (Feast on Postgres, a Redis of our own)."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from spanishgas.settings import ApiSettings, Settings
from tests.conftest import RedisServer

REPO = Path(__file__).parents[2]
KEY, SECOND_KEY = "agent-desk-key", "supervisor-key"
AUTH = {"X-API-Key": KEY}


@pytest.fixture(scope="session")
def served(model_lake: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A champion (3 trials), a segment model, features materialized to the local online store and the
    batch job's table for the same model version. MLflow lives in its own folder so the other model
    tests' aliases are untouched."""
    from spanishgas.feature_store.store import materialize
    from spanishgas.model.registry import assign_champion
    from spanishgas.model.train import load_training_data, train
    from spanishgas.retention.job import run_score, run_segment

    root = tmp_path_factory.mktemp("api-mlflow")
    settings = model_lake.model_copy(
        update={
            "mlflow_tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
            "mlflow_registry_uri": f"sqlite:///{root / 'mlflow.db'}",
            "optuna_storage": f"sqlite:///{root / 'optuna.db'}",
            "api": ApiSettings(api_keys=[SecretStr(KEY), SecretStr(SECOND_KEY)], reload_interval_s=0.2),
        }
    )
    data = load_training_data(settings, "E5")
    first = train(settings, "E5", 3, data=data)
    # the serving path is under test, not the gate (whose verdict on a few hundred rows is a coin flip)
    assign_champion(settings, first.model_version, reason="api tests")
    run_segment(settings)
    materialize(settings)
    batch = run_score(settings).table.set_index("customer_id")
    return {"settings": settings, "batch": batch, "data": data, "version": first.model_version, "report": first}


@pytest.fixture(scope="session")
def stack(served: dict[str, Any], postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The same features loaded into the stack profile: Postgres offline store, our Redis online store."""
    import psycopg2

    from spanishgas.feature_store.offline import load_offline
    from spanishgas.feature_store.store import apply, get_store, materialize
    from spanishgas.settings import FeastSettings, RedisSettings

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    base: Settings = served["settings"]
    database = f"api_features_{uuid.uuid4().hex[:8]}"
    settings = base.model_copy(
        update={
            "profile": "stack",
            "redis": RedisSettings(port=server.port, db=0),
            "feast": base.feast.model_copy(update={"database": database, "project": "api_test"}),
        }
    )
    assert isinstance(settings.feast, FeastSettings)
    try:
        load_offline(settings)
        store = get_store(settings)
        apply(settings, store)
        materialize(settings, store=store)
        yield {"settings": settings, "server": server, "store": store}
    finally:
        if server.process is not None and server.process.poll() is None:
            server.signal(signal.SIGCONT)
            server.process.kill()
        conn = psycopg2.connect(postgres_dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.close()


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes `get_settings()` read ``settings``' stores."""
    return {
        "SPANISHGAS_PROFILE": settings.profile,
        "SPANISHGAS_DATA_ROOT": str(settings.data_root),
        "SPANISHGAS_GX_ROOT": str(settings.gx_root),
        "SPANISHGAS_FEAST_REPO_PATH": str(REPO / "feature_repo"),
        "SPANISHGAS_MLFLOW_TRACKING_URI": str(settings.mlflow_tracking_uri),
        "SPANISHGAS_MLFLOW_REGISTRY_URI": str(settings.mlflow_registry_uri),
        "SPANISHGAS_OPTUNA_STORAGE": str(settings.optuna_storage),
    }


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Point the app at a world through the environment, with every Streamlit cache emptied."""
    import streamlit as st

    from spanishgas.settings import get_settings

    def use(env: dict[str, str]) -> None:
        for key in [k for k in os.environ if k.startswith("SPANISHGAS_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        st.cache_data.clear()
        st.cache_resource.clear()

    yield use
    get_settings.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()
