"""Feature store definitions and configuration, without servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from spanishgas.feature_registry import TIERS, experiment_features, experiments, feature_names
from spanishgas.settings import FeastSettings, Settings

pytestmark = pytest.mark.unit
REPO = Path(__file__).parents[2] / "feature_repo"


def _settings(profile: str, tmp_path: Path) -> Settings:
    return Settings(
        profile=profile,  # type: ignore[arg-type]
        data_root=tmp_path,
        lake_uri=str(tmp_path / "lake"),
        feast_repo_path=REPO,
        feast=FeastSettings(ttl_days=45, local_dir=tmp_path / "fs"),
    )


def test_every_feature_is_in_exactly_one_tier_view(tmp_path: Path) -> None:
    from spanishgas.feature_store.definitions import PROFILE_VIEW, build_definitions, tier_view_name

    defs = build_definitions(_settings("local", tmp_path))
    served = [f.name for tier in TIERS for f in defs.views[tier_view_name(tier)].features]
    assert sorted(served) == sorted(feature_names()) and len(served) == len(set(served))
    assert [f.name for f in defs.views[PROFILE_VIEW].features] == ["segment", "province_code", "revenue_avg_12m"]
    assert {v.ttl for v in defs.views.values()} == {timedelta(days=45)}
    assert all(v.online for v in defs.views.values())


def test_feature_services_follow_the_experiment_sets(tmp_path: Path) -> None:
    from spanishgas.feature_store.definitions import MODEL_SERVICE, build_definitions, experiment_service_name

    services = {s.name: s for s in build_definitions(_settings("stack", tmp_path)).services}

    def names(service: str) -> list[str]:
        return [f.name for p in services[service].feature_view_projections for f in p.features]

    assert names(MODEL_SERVICE) == feature_names()
    for experiment in experiments():
        assert names(experiment_service_name(experiment)) == experiment_features(experiment)
    assert names("call_center_v1")[-3:] == ["segment", "province_code", "revenue_avg_12m"]


def test_source_follows_the_profile(tmp_path: Path) -> None:
    from feast import FileSource
    from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import PostgreSQLSource

    from spanishgas.feature_store.definitions import customer_features_source

    local = customer_features_source(_settings("local", tmp_path))
    stack = customer_features_source(_settings("stack", tmp_path))
    assert isinstance(local, FileSource) and local.path.endswith("customer_features.parquet")
    assert isinstance(stack, PostgreSQLSource) and stack.get_table_query_string() == "customer_features"
    assert local.created_timestamp_column == stack.created_timestamp_column == "created_timestamp"


@pytest.mark.parametrize("profile", ["local", "stack"])
def test_feast_cli_reads_the_same_configuration(profile: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`spanishgas features env` gives the feast CLI exactly the configuration the platform uses."""
    import shlex

    from feast.repo_config import load_repo_config

    from spanishgas import cli
    from spanishgas.feature_store.config import repo_config, yaml_path
    from spanishgas.settings import get_settings

    settings = _settings(profile, tmp_path)
    monkeypatch.setenv("SPANISHGAS_PROFILE", profile)
    monkeypatch.setenv("SPANISHGAS_DATA_ROOT", str(tmp_path))
    monkeypatch.setenv("SPANISHGAS_FEAST__LOCAL_DIR", str(tmp_path / "fs"))
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(cli.app, ["features", "env"])
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    for line in out.output.splitlines():
        key, value = line.removeprefix("export ").split("=", 1)
        monkeypatch.setenv(key, shlex.split(value)[0] if value else "")
    theirs = load_repo_config(REPO, yaml_path(settings))
    ours = repo_config(settings)
    assert ours.project == theirs.project == "spanishgas"
    for part in ("online_store", "offline_store", "registry"):
        assert getattr(ours, part).model_dump() == getattr(theirs, part).model_dump()
    expected_online = "sqlite" if profile == "local" else "redis"
    assert ours.online_store.type == expected_online


def test_prepare_features_shapes_gold_for_feast() -> None:
    from spanishgas.feature_store.offline import FeatureLoadError, offline_columns, prepare_features

    n = 2
    columns = {
        "customer_id": ["C1", "C2"],
        "as_of_date": [datetime(2024, 5, 1).date()] * n,
        "event_timestamp": pa.array([datetime(2024, 5, 1)] * n, pa.timestamp("ns")),
        "segment": ["residential", "sme"],
        "province_code": ["28", "08"],
        "revenue_avg_12m": [10.0, 20.0],
        **{f: [1.0, 2.0] for f in feature_names()},
    }
    created = datetime(2024, 6, 1, 12, tzinfo=UTC)
    table = prepare_features(pa.table(columns), created)
    assert table.column_names == offline_columns()
    assert table.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
    assert table["event_timestamp"][0].as_py() == datetime(2024, 5, 1, tzinfo=UTC)
    assert table["created_timestamp"].to_pylist() == [created, created]
    del columns["months_to_renewal"]
    with pytest.raises(FeatureLoadError, match="months_to_renewal"):
        prepare_features(pa.table(columns), created)


def test_gold_publication_time_prefers_the_manifest() -> None:
    from spanishgas.feature_store.offline import gold_publication_time

    run = "gold-20241231T101500123Z"
    assert gold_publication_time({"finished_at": "2025-01-02T03:04:05+00:00"}, run) == datetime(
        2025, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    assert gold_publication_time({}, run) == datetime(2024, 12, 31, 10, 15, 0, 123000, tzinfo=UTC)
