from pathlib import Path

import pytest
from typer.testing import CliRunner

from spanishgas.cli import app
from spanishgas.contracts import contracts_markdown

pytestmark = pytest.mark.unit
runner = CliRunner()


def test_help_lists_the_stages() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for stage in ("generate", "demo", "settings", "contracts"):
        assert stage in result.output


def test_settings_prints_json_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPANISHGAS_POSTGRES__PASSWORD", "hunter2")
    from spanishgas.settings import get_settings

    get_settings.cache_clear()
    result = runner.invoke(app, ["settings", "--json"])
    get_settings.cache_clear()
    assert result.exit_code == 0
    assert '"profile"' in result.output and "hunter2" not in result.output


def test_data_contracts_doc_is_generated_from_code() -> None:
    doc = Path(__file__).parents[2] / "docs" / "data_contracts.md"
    assert doc.read_text().strip() == contracts_markdown().strip(), "run: spanishgas contracts --markdown"


def test_generate_rejects_bad_dates_clearly(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "generate",
            "--start",
            "2024-06-01",
            "--end",
            "2024-01-01",
            "--out",
            str(tmp_path / "raw"),
            "--truth",
            str(tmp_path / "truth"),
        ],
    )
    assert result.exit_code == 2
    assert "before start" in result.output
    assert not (tmp_path / "raw").exists()


def test_generate_refuses_to_overwrite_a_delivery(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "churn_label.csv").write_text("customer_id,churn\nC00001,0\n")
    result = runner.invoke(
        app,
        [
            "generate",
            "--customers",
            "20",
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-31",
            "--out",
            str(raw),
            "--truth",
            str(tmp_path / "truth"),
        ],
    )
    assert result.exit_code == 2
    assert "already holds a delivery" in result.output
    assert (raw / "churn_label.csv").read_text() == "customer_id,churn\nC00001,0\n"


def test_features_doc_is_generated_from_the_registry() -> None:
    from spanishgas.feature_registry import features_markdown

    doc = Path(__file__).parents[2] / "docs" / "features.md"
    assert doc.read_text() == features_markdown(), "run: spanishgas features-doc > docs/features.md"


def test_experiment_sets_are_tier_ablations() -> None:
    from spanishgas.feature_registry import TIERS, experiment_features, experiments, feature_names

    assert set(experiments()) == {f"E{i}" for i in range(9)}
    assert experiment_features("E5") == feature_names(TIERS)
    for name in ("E6", "E7", "E8"):
        assert set(experiment_features(name)) < set(experiment_features("E5"))
    with pytest.raises(KeyError, match="unknown experiment"):
        experiment_features("E42")


def test_scoring_without_a_champion_says_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spanishgas.settings import get_settings

    monkeypatch.setenv("SPANISHGAS_DATA_ROOT", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["score"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "scoring failed, nothing published" in result.output and "spanishgas train" in result.output


def test_a_negative_budget_is_refused() -> None:
    result = runner.invoke(app, ["recommend", "--budget", "-5"])
    assert result.exit_code == 2


def test_monitoring_without_a_champion_says_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spanishgas.settings import get_settings

    monkeypatch.setenv("SPANISHGAS_DATA_ROOT", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["monitor", "--no-push"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "monitor failed, nothing published" in result.output and "spanishgas train" in result.output
