"""Training, registry, promotion and rollback on generated data through the real feature store and a
real MLflow registry (local profile: SQLite backend, artifacts on disk)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from spanishgas.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow]

TRIALS = 6


@pytest.fixture(scope="module")
def trained(model_lake: Settings) -> dict[str, Any]:
    """One real training run registered as the challenger, with its training data."""
    from spanishgas.model.train import load_training_data, train

    data = load_training_data(model_lake, "E5")
    report = train(model_lake, "E5", TRIALS, data=data)
    return {"settings": model_lake, "data": data, "report": report}


def test_training_logs_lineage_metrics_plots_and_a_challenger(trained: dict[str, Any]) -> None:
    from mlflow.tracking import MlflowClient

    from spanishgas.model.registry import configure

    settings, report = trained["settings"], trained["report"]
    client: MlflowClient = configure(settings)
    run = client.get_run(report.mlflow_run_id)
    assert run.data.params["gold_run_id"] == report.gold_run_id and report.gold_run_id.startswith("gold-")
    assert run.data.params["feature_service"] == "churn_e5_v1"
    for metric in (
        "test_pr_auc",
        "test_roc_auc",
        "test_brier",
        "test_ece",
        "test_recall_top10",
        "test_lift_top5",
        "baseline_logistic_regression_test_pr_auc",
        "truth_roc_auc",
        "roc_auc_vs_truth",
        "oracle_pr_auc",
        "pr_auc_vs_oracle",
    ):
        assert metric in run.data.metrics, metric
    artifacts = {a.path for a in client.list_artifacts(report.mlflow_run_id)}
    assert {"plots", "model_card.md", "train_report.json"} <= artifacts
    plots = {a.path.split("/")[-1] for a in client.list_artifacts(report.mlflow_run_id, "plots")}
    assert plots == {"pr_curve.png", "calibration_curve.png", "lift_chart.png", "shap_summary.png"}
    version = client.get_model_version_by_alias(settings.model.registered_name, "challenger")
    assert str(version.version) == report.model_version
    assert version.tags["gold_run_id"] == report.gold_run_id
    # The split is forward in time with a label horizon between periods, and the tuning really ran.
    periods = {k: [date.fromisoformat(d) for d in v.split(" ")[0].split("..")] for k, v in report.split.items()}
    horizon = timedelta(days=settings.label_horizon_days)
    assert periods["train"][1] + horizon <= periods["validation"][0]
    assert periods["validation"][1] + horizon <= periods["test"][0]
    assert report.tuning["trials_complete"] + report.tuning["trials_pruned"] == TRIALS
    # the threshold was chosen on validation for the configured recall
    assert report.validation["recall_at_threshold"] >= settings.model.recall_target and 0 <= report.threshold <= 1
    # An honest model stays below the best possible on the same rows, which stays below the oracle.
    assert report.truth["roc_auc_vs_truth"] <= 1.0
    assert report.truth["truth_roc_auc"] < report.truth["oracle_roc_auc"]
    assert report.test["roc_auc"] > 0.6


def test_registered_model_scores_like_the_trained_one(trained: dict[str, Any]) -> None:
    import mlflow.pyfunc

    from spanishgas.model.registry import load_version

    settings = trained["settings"]
    loaded = load_version(settings, "challenger")
    frame = trained["data"].frame.head(200)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{settings.model.registered_name}@challenger")
    out = pyfunc.predict(frame[loaded.model.features])
    np.testing.assert_allclose(out["churn_probability"].to_numpy(), loaded.model.predict_proba(frame))
    assert set(out["risk_tier"]) <= {"low", "medium", "high", "critical"}


def test_closer_renewal_and_a_new_complaint_raise_the_score(trained: dict[str, Any]) -> None:
    """Behaviour: the same customers, moved to within three months of renewal and given a fresh
    complaint (all else equal), score higher."""
    from spanishgas.model.registry import load_version

    model = load_version(trained["settings"], "challenger").model
    frame = trained["data"].frame
    base = frame[(frame["renewal_bucket_6_12m"] == 1) & (frame["complaints_90d"] == 0)].head(300).copy()
    moved = base.copy()
    moved["months_to_renewal"] = 1.0
    moved[["renewal_bucket_6_12m", "renewal_bucket_3_6m", "renewal_bucket_expired"]] = 0.0
    moved["renewal_bucket_0_3m"] = 1.0
    for column in (
        "complaints_90d",
        "complaints_180d",
        "complaints_365d",
        "contacts_30d",
        "contacts_90d",
        "contacts_180d",
        "contacts_365d",
    ):
        moved[column] = moved[column] + 1
    moved["days_since_last_contact"] = 10.0
    moved["days_since_last_complaint"] = 10.0
    moved["max_intent_severity_180d"] = np.maximum(moved["max_intent_severity_180d"], 2.0)
    moved["contact_near_renewal"] = 1.0
    before, after = model.predict_proba(base), model.predict_proba(moved)
    assert len(base) >= 100
    assert (after > before).mean() >= 0.9, f"only {(after > before).mean():.0%} scored higher"
    assert np.median(after / np.maximum(before, 1e-9)) > 1.5


def test_a_leaking_feature_stops_training(model_lake: Settings, trained: dict[str, Any]) -> None:
    from spanishgas.model.metrics import LeakageSuspected
    from spanishgas.model.split import time_split
    from spanishgas.model.train import fit_churn_model

    data = trained["data"]
    leaky = data.frame.copy()
    leaky["next_quarter_churn"] = leaky["label"].astype(float)  # the future, as a feature
    split = time_split(sorted(leaky["as_of_date"].unique()), 90, 2)
    with pytest.raises(LeakageSuspected):
        fit_churn_model(
            replace(data, frame=leaky, features=[*data.features, "next_quarter_churn"]),
            split,
            model_lake,
            trials=2,
            study_name="leak",
        )


def test_promotion_gate_accepts_better_refuses_worse_and_rollback_restores(trained: dict[str, Any]) -> None:
    from spanishgas.model.registry import alias_version, promote, rollback
    from spanishgas.model.train import forward_split, gate_rows, train

    settings, data = trained["settings"], trained["data"]
    rows = gate_rows(settings, "E5")
    first = trained["report"].model_version

    # The utility's floor (0.70) is out of reach on this data, and the gate says so rather than passing.
    refused = promote(settings, rows)
    assert not refused.promoted and alias_version(settings, "champion") is None
    assert any("cannot support" in r for r in refused.reasons)

    floor = 0.0  # what an operator sets, with a reason, when the business accepts the data's ceiling
    assert promote(settings, rows, floor=floor, reason="test: floor unreachable").promoted
    assert alias_version(settings, "champion") == first

    # A model trained on shuffled labels (the test period keeps its real ones) must be refused.
    shuffled = data.frame.copy()
    before_test = shuffled["as_of_date"] < min(forward_split(settings, shuffled).test)
    shuffled.loc[before_test, "label"] = np.random.default_rng(3).permutation(shuffled.loc[before_test, "label"])
    worse = train(settings, "E5", 2, data=replace(data, frame=shuffled))
    verdict = promote(settings, rows, floor=floor)
    assert not verdict.promoted and alias_version(settings, "champion") == first
    assert alias_version(settings, "challenger") == worse.model_version

    # A retrained model as good as the champion passes and takes over; rollback brings the first back.
    better = train(settings, "E5", TRIALS, data=data)
    assert promote(settings, rows, floor=floor).promoted
    assert alias_version(settings, "champion") == better.model_version
    # Promoting the champion again moves nothing and must not make rollback a no-op.
    again = promote(settings, rows, floor=floor)
    assert any("already the champion" in r for r in again.reasons)
    outcome = rollback(settings, reason="test")
    assert outcome == {"from_version": better.model_version, "to_version": first, "reason": "test"}
    assert alias_version(settings, "champion") == first

    # A challenger on another feature set is judged against the champion on the same rows.
    other = train(settings, "E0", 2)
    verdict = promote(settings, gate_rows(settings, "E0"), floor=floor)
    assert verdict.challenger == other.model_version
    assert {"challenger_pr_auc", "champion_pr_auc", "baseline_lr_pr_auc"} <= set(verdict.figures)
    if verdict.promoted:
        rollback(settings, reason="test: restore")
    assert alias_version(settings, "champion") == first


def test_the_model_page_draws_champion_and_challenger_from_the_scores_kept_with_them(
    trained: dict[str, Any], app_env: Any
) -> None:
    """Training keeps each version's forward test scores, the gate keeps both models' scores on its rows:
    the analyst app's model page draws its curves from those (no test period rebuilt through Feast), on
    the gate's rows once the gate has compared the two, and the figures are what scoring now would give."""
    from streamlit.testing.v1 import AppTest

    from spanishgas.analyst.health import compare_on_test_rows, score_on_current_test_rows
    from spanishgas.model.registry import alias_version, assign_champion, load_version, promote, rollback
    from spanishgas.model.split import split_frame
    from spanishgas.model.test_scores import PROBABILITY, TEST_SCORES, read_scores
    from spanishgas.model.train import forward_split, gate_rows, train
    from tests.integration.conftest import REPO, settings_env

    settings, data = trained["settings"], trained["data"]
    champion = alias_version(settings, "champion")
    if champion is None:
        champion = trained["report"].model_version
        assign_champion(settings, champion, reason="test: the model page needs a champion")
    newer = train(settings, "E5", 2, data=data)
    versions = {"champion": champion, "challenger": newer.model_version}

    # The kept table is the version's own probabilities on its forward test rows.
    kept = read_scores(newer.mlflow_run_id, TEST_SCORES)
    test_rows = split_frame(data.frame, forward_split(settings, data.frame))[2]
    assert kept is not None and len(kept) == len(test_rows)
    again = load_version(settings, version=newer.model_version).model.predict_proba(test_rows)
    np.testing.assert_allclose(kept[PROBABILITY].to_numpy(), again, rtol=1e-5, atol=1e-6)

    before_gate = compare_on_test_rows(settings, versions)
    assert not before_gate.same_rows and "has not compared" in before_gate.basis
    assert set(before_gate.pr["model"]) == set(versions)

    verdict = promote(settings, gate_rows(settings, "E5"), floor=0.0)  # either verdict keeps the scores
    if verdict.promoted:
        rollback(settings, reason="test: the page compares the two")
    after_gate = compare_on_test_rows(settings, versions)
    assert after_gate.same_rows and "promotion gate" in after_gate.basis
    scored_now = score_on_current_test_rows(settings, versions)
    assert (after_gate.rows, after_gate.churners) == (scored_now.rows, scored_now.churners)
    pd.testing.assert_frame_equal(after_gate.deciles, scored_now.deciles, rtol=1e-4)

    app_env(settings_env(settings))
    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/model.py").run()
    assert not at.exception, [e.message for e in at.exception]
    shown = " ".join(c.value for c in at.caption)
    assert "promotion gate" in shown and f"{after_gate.rows:,} customer-months" in shown
    assert set(at.dataframe[0].value.columns) == {f"champion v{champion}", f"challenger v{newer.model_version}"}


def test_a_champion_on_a_retired_feature_is_not_compared_and_the_gate_says_so(trained: dict[str, Any]) -> None:
    """After a feature leaves the feature store (ADR 0012) the champion cannot be scored on today's rows:
    promotion must decide on the other rules and say why, not crash."""
    from spanishgas.model.registry import RetiredFeatures, alias_version, assign_champion, promote
    from spanishgas.model.train import gate_rows, train
    from spanishgas.retention.job import run_score

    settings, data = trained["settings"], trained["data"]
    before = alias_version(settings, "champion") or trained["report"].model_version
    frame = data.frame.assign(retired_feature=data.frame["tenure_months"])
    old = train(settings, "E5", 2, data=replace(data, frame=frame, features=[*data.features, "retired_feature"]))
    assign_champion(settings, old.model_version, reason="test: a champion from before a feature was retired")
    try:
        with pytest.raises(RetiredFeatures, match="retired_feature"):  # batch scoring: a clear error
            run_score(settings)
        new = train(settings, "E5", 2, data=data)
        rows = gate_rows(settings, "E5")
        # without the champion comparison the gate needs the operator's word
        refused = promote(settings, rows, floor=0.0)
        assert not refused.promoted and alias_version(settings, "champion") == old.model_version
        assert any("retired_feature" in r and "cannot be scored" in r and "--reason" in r for r in refused.reasons)
        assert "champion_pr_auc" not in refused.figures
        verdict = promote(settings, rows, floor=0.0, reason="test: retrained after the feature was retired")
        beats_baseline = verdict.figures["challenger_pr_auc"] > verdict.figures["baseline_lr_pr_auc"]
        assert verdict.promoted == beats_baseline
        assert alias_version(settings, "champion") == (new.model_version if beats_baseline else old.model_version)
    finally:
        assign_champion(settings, before, reason="test: restore")


def test_experiment_comparison_table(trained: dict[str, Any]) -> None:
    from spanishgas.model.train import compare_experiments

    table: pd.DataFrame = compare_experiments(trained["settings"], ["E0", "E5"], trials=2)
    assert table["experiment"].tolist() == ["E0", "E5"]
    assert table.loc[0, "features"] < table.loc[1, "features"]
    assert table["mlflow_run_id"].str.len().min() > 0


def test_batch_scoring_scores_explains_segments_and_recommends_every_active_customer(
    trained: dict[str, Any],
) -> None:
    import pyarrow.parquet as pq

    from spanishgas.model.registry import alias_version, assign_champion
    from spanishgas.retention.job import latest_candidates, run_score, run_segment

    settings = trained["settings"]
    if alias_version(settings, "champion") is None:
        assign_champion(settings, trained["report"].model_version, reason="test: batch scoring, not the gate")
    first, second = run_segment(settings), run_segment(settings)
    assert first["segments"] == second["segments"] and first["k"] >= 3  # same data and seed: same segments

    budget = 1500.0
    result = run_score(settings, budget)
    _, candidates = latest_candidates(settings)
    table = result.table
    assert result.rows == len(candidates) == table["customer_id"].nunique()
    assert table["churn_probability"].between(0, 1).all()
    assert set(table["risk_tier"]) <= {"low", "medium", "high", "critical"}
    assert (table["model_version"] == alias_version(settings, "champion")).all()
    offered = table[table["action"] != "no_offer"]
    assert len(offered) > 0  # the checks below must have something to check
    assert (offered["reason_count"] > 0).all() and (offered["expected_margin_impact_eur"] > 0).all()
    assert offered["offer_cost_eur"].sum() <= budget
    assert result.summary["plan"]["expected_value_eur"] >= 0
    # reason codes carry only features that push risk up
    for reasons in table["reasons_json"].head(200):
        assert all(r["contribution"] > 0 for r in json.loads(reasons))
    published = pq.read_table(result.lake_path).to_pandas()
    assert len(published) == result.rows
