from pathlib import Path

import pytest

from spanishgas.settings import Settings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("SPANISHGAS_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env from the repo


def test_local_profile_is_embedded_by_default() -> None:
    s = Settings()
    assert s.profile == "local"
    assert s.lake_uri == str(Path("data") / "lake")
    assert s.mlflow_tracking_uri.startswith("sqlite:///")
    assert s.optuna_storage.startswith("sqlite:///")
    assert s.raw_dir == Path("data/raw") and s.truth_dir == Path("data/truth")
    assert s.lake_is_local
    assert s.spark.master == "local[*]"


def test_stack_profile_points_at_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPANISHGAS_PROFILE", "stack")
    monkeypatch.setenv("SPANISHGAS_POSTGRES__HOST", "db.internal")
    monkeypatch.setenv("SPANISHGAS_POSTGRES__PASSWORD", "s3cret")
    monkeypatch.setenv("SPANISHGAS_S3__BUCKET", "lake-bucket")
    s = Settings()
    assert s.lake_uri == "s3a://lake-bucket/lake"
    assert not s.lake_is_local
    assert s.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert s.optuna_storage == "postgresql+psycopg2://postgres:s3cret@db.internal:5432/optuna"
    shown = s.describe()
    assert "s3cret" not in str(shown) and "***" in shown["optuna_storage"]


def test_explicit_values_beat_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPANISHGAS_PROFILE", "stack")
    monkeypatch.setenv("SPANISHGAS_LAKE_URI", "/mnt/lake")
    monkeypatch.setenv("SPANISHGAS_SPARK__MASTER", "spark://master:7077")
    s = Settings()
    assert s.lake_uri == "/mnt/lake"
    assert s.spark.master == "spark://master:7077"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SPANISHGAS_PROFILE=stack\nSPANISHGAS_REDIS__PORT=6390\n")
    s = Settings()
    assert s.profile == "stack"
    assert s.redis.port == 6390
    assert s.redis.connection_string == "127.0.0.1:6390,db=0"


def test_unknown_profile_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPANISHGAS_PROFILE", "cloud")
    with pytest.raises(ValueError, match="profile"):
        Settings()


def test_env_example_documents_every_setting() -> None:
    example = (Path(__file__).parents[2] / ".env.example").read_text()
    for name, field in Settings.model_fields.items():
        sub = getattr(field.annotation, "model_fields", None)
        if sub:
            for subname in sub:
                assert f"SPANISHGAS_{name.upper()}__{subname.upper()}" in example, (name, subname)
        else:
            assert f"SPANISHGAS_{name.upper()}" in example, name


def test_rooted_at_derives_every_path_from_the_new_root(tmp_path: Path) -> None:
    moved = Settings().rooted_at(tmp_path / "demo", seed=7)
    root = tmp_path / "demo"
    assert moved.lake_uri == str(root / "lake") and moved.truth_dir == root / "truth"
    assert moved.mlflow_tracking_uri == f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    assert moved.optuna_storage == f"sqlite:///{root / 'optuna.db'}"
    assert moved.feast.local_dir == root / "feature_store" and moved.seed == 7
