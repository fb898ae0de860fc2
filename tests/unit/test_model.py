"""Churn model pieces without services: split, metrics, calibration, tiers, the promotion rules."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from spanishgas.settings import ModelSettings, Settings

pytestmark = pytest.mark.unit


def _months(first: date, n: int) -> list[date]:
    out, d = [], first
    for _ in range(n):
        out.append(d)
        d = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


@pytest.mark.parametrize("n_dates", [7, 13])
def test_split_has_no_time_overlap(n_dates: int) -> None:
    from spanishgas.model.split import time_split

    dates = _months(date(2023, 10, 1), n_dates)
    split = time_split(dates, horizon_days=90, validation_dates=2, test_dates=1)
    horizon = timedelta(days=90)
    assert split.test == [dates[-1]]
    # every label of a period ends before the next period starts
    assert max(split.train) + horizon <= min(split.validation)
    assert max(split.validation) + horizon <= min(split.test)
    assert not set(split.train) & set(split.validation) and not set(split.validation) & set(split.test)
    if n_dates == 13:
        assert len(split.validation) == 2 and len(split.train) == 6
    else:  # 7 snapshots only leave room for one validation date
        assert len(split.validation) == 1 and split.train == [dates[0]]


def test_split_with_several_test_dates_keeps_the_gap_before_the_first() -> None:
    from spanishgas.model.split import SplitError, time_split

    dates = _months(date(2023, 1, 1), 15)
    split = time_split(dates, horizon_days=90, validation_dates=2, test_dates=3)
    assert split.test == dates[-3:]
    assert max(split.validation) + timedelta(days=90) <= min(split.test)
    assert max(split.train) + timedelta(days=90) <= min(split.validation)
    assert split.validation == [dates[8], dates[9]] and split.train == dates[:6]
    with pytest.raises(SplitError, match="at least 1"):
        time_split(dates, horizon_days=90, test_dates=0)


@pytest.mark.parametrize(
    ("n_dates", "expected"),
    [(19, (10, 2, 3)), (13, (4, 2, 3)), (7, (1, 1, 1))],  # 24, 18 and 12 months of data (3 warm-up months)
)
def test_test_period_shrinks_before_training_disappears(n_dates: int, expected: tuple[int, int, int]) -> None:
    from spanishgas.model.split import time_split

    dates = _months(date(2023, 4, 1), n_dates)
    split = time_split(dates, horizon_days=90, validation_dates=2, test_dates=3)
    assert (len(split.train), len(split.validation), len(split.test)) == expected
    assert split.test == dates[-expected[2] :]
    assert max(split.train) + timedelta(days=90) <= min(split.validation)
    assert max(split.validation) + timedelta(days=90) <= min(split.test)


def test_split_refuses_too_short_a_history() -> None:
    from spanishgas.model.split import SplitError, time_split

    with pytest.raises(SplitError, match="months"):
        time_split(_months(date(2024, 1, 1), 5), horizon_days=90)


def test_threshold_maximizes_precision_at_the_recall_target() -> None:
    from spanishgas.model.metrics import evaluate, threshold_at_recall

    rng = np.random.default_rng(0)
    y = (rng.random(5000) < 0.05).astype(int)
    p = np.clip(0.05 + 0.2 * y + rng.normal(0, 0.1, 5000), 0, 1)
    t = threshold_at_recall(y, p, 0.70)
    m = evaluate(y, p, t)
    assert m["recall_at_threshold"] >= 0.70
    # one step stricter falls under the recall target: the threshold is as high as it can be
    stricter = np.sort(np.unique(p[p > t]))[0]
    assert evaluate(y, p, stricter)["recall_at_threshold"] < 0.70
    assert m["confusion"]["tp"] + m["confusion"]["fn"] == y.sum()


def test_lift_and_top_recall() -> None:
    from spanishgas.model.metrics import top_share

    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0] * 10)
    p = np.where(y == 1, 0.9, 0.1) + np.linspace(0, 0.01, 100)
    recall, lift = top_share(y, p, 0.10)
    assert recall == pytest.approx(0.5) and lift == pytest.approx(5.0)


def test_calibration_improves_brier_on_held_out_rows() -> None:
    """XGBoost trained with a heavy positive weight overstates risk; calibration on validation rows
    brings the Brier score down on rows it never saw."""
    from sklearn.metrics import brier_score_loss
    from xgboost import XGBClassifier

    from spanishgas.model.churn_model import Calibrator
    from spanishgas.model.train import choose_calibration

    rng = np.random.default_rng(1)
    n = 12000
    x = rng.normal(size=(n, 5))
    logit = -3.5 + 1.2 * x[:, 0] - 0.8 * x[:, 1] + 0.5 * x[:, 2] * x[:, 3]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    train, val, test = slice(0, 6000), slice(6000, 9000), slice(9000, n)
    model = XGBClassifier(n_estimators=150, max_depth=3, scale_pos_weight=15, random_state=0).fit(x[train], y[train])
    raw = {k: model.predict_proba(x[s])[:, 1] for k, s in (("val", val), ("test", test))}
    method = choose_calibration(raw["val"], y[val], np.arange(3000))
    calibrated = Calibrator(method).fit(raw["val"], y[val]).transform(raw["test"])
    assert brier_score_loss(y[test], calibrated) < 0.8 * brier_score_loss(y[test], raw["test"])


def test_risk_tiers_follow_the_configured_cut_offs() -> None:
    from spanishgas.model.churn_model import risk_tier

    cuts = {"medium": 0.05, "high": 0.12, "critical": 0.25}
    assert [risk_tier(p, cuts) for p in (0.0, 0.049, 0.05, 0.2, 0.25, 1.0)] == [
        "low",
        "low",
        "medium",
        "high",
        "critical",
        "critical",
    ]


def test_a_model_above_the_truth_is_flagged_as_leaking() -> None:
    from spanishgas.model.metrics import LeakageSuspected, compare_with_truth

    truth = {"roc_auc": 0.83, "pr_auc": 0.23}
    ratios = compare_with_truth({"roc_auc": 0.81, "pr_auc": 0.21}, truth)
    assert ratios["roc_auc_vs_truth"] == pytest.approx(0.81 / 0.83)
    with pytest.raises(LeakageSuspected, match="knows the future"):
        compare_with_truth({"roc_auc": 0.95, "pr_auc": 0.6}, truth)


@pytest.mark.parametrize(
    ("challenger", "baseline", "champion", "truth", "ok", "needle"),
    [
        (0.25, 0.20, None, 0.3, False, "data cannot support"),
        (0.18, 0.20, None, None, False, "does not beat the logistic-regression baseline"),
        (0.80, 0.20, 0.90, None, False, "worse than the champion"),
        (0.89, 0.20, 0.895, None, True, "within 0.01 of the champion"),
        (0.75, 0.20, None, None, True, "clears the PR-AUC floor 0.70"),
    ],
)
def test_promotion_rules(
    challenger: float, baseline: float, champion: float | None, truth: float | None, ok: bool, needle: str
) -> None:
    from spanishgas.model.registry import evaluate_gate

    settings = Settings(model=ModelSettings(pr_auc_floor=0.70, champion_margin=0.01))
    passed, reasons = evaluate_gate(
        settings, {"pr_auc": challenger}, baseline, None if champion is None else {"pr_auc": champion}, truth
    )
    assert passed is ok
    assert any(needle in r for r in reasons), reasons


def test_feature_frame_keeps_missing_values_and_order() -> None:
    from spanishgas.model.churn_model import FeatureFrame

    frame = pd.DataFrame({"b": [1, None], "a": [0.5, 2.0], "label": [0, 1]})
    out = FeatureFrame(["a", "b"]).fit(frame).transform(frame)
    assert out.shape == (2, 2) and np.isnan(out[1, 1]) and out[0, 0] == 0.5
    with pytest.raises(KeyError, match="c"):
        FeatureFrame(["c"]).fit(frame)


def test_auc_standard_error_shrinks_with_more_positives() -> None:
    from spanishgas.model.metrics import auc_standard_error

    few, many = auc_standard_error(0.8, 10, 300), auc_standard_error(0.8, 600, 19000)
    assert 0.05 < few < 0.2 and many < 0.015


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibrator_matches_the_fitted_scikit_learn_model(method: str) -> None:
    """The calibrator skips scikit-learn's input checks for speed; its numbers must not change."""
    from spanishgas.model.churn_model import ISOTONIC_TIE_BREAK, Calibrator, _logit

    rng = np.random.default_rng(3)
    raw = rng.beta(1, 8, 4000)
    y = (rng.random(4000) < raw * 1.5).astype(int)
    calibrator = Calibrator(method).fit(raw[:3000], y[:3000])
    fresh = np.concatenate([raw[3000:], [0.0, 1.0, raw.min() / 2, 0.999]])  # includes out-of-range scores
    if method == "isotonic":
        # plus the tie-break share of the raw score (test below)
        tie_break = ISOTONIC_TIE_BREAK
        expected = (1 - tie_break) * np.clip(calibrator._model.predict(fresh), 0.0, 1.0) + tie_break * fresh
    else:
        expected = calibrator._model.predict_proba(_logit(fresh)[:, None])[:, 1]
    np.testing.assert_allclose(calibrator.transform(fresh), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_keeps_the_models_order(method: str) -> None:
    """Isotonic regression alone is flat over blocks and beyond the fitted range, which ties customers the
    model ranks apart and lowers PR-AUC; the calibrated probabilities must keep every raw distinction."""
    from sklearn.metrics import average_precision_score

    from spanishgas.model.churn_model import ISOTONIC_TIE_BREAK, Calibrator

    rng = np.random.default_rng(5)
    raw = rng.beta(1, 10, 6000)
    y = (rng.random(6000) < np.sqrt(raw)).astype(int)
    calibrator = Calibrator(method).fit(raw[:2000], y[:2000])
    fresh = np.sort(np.concatenate([raw[2000:], [raw[:2000].max() * 1.01, raw[:2000].max() * 1.02, 0.999]]))
    calibrated = calibrator.transform(fresh)
    assert np.all(np.diff(calibrated) > 0)  # strictly increasing: no two distinct scores tie
    held = slice(2000, None)
    assert average_precision_score(y[held], calibrator.transform(raw[held])) == pytest.approx(
        average_precision_score(y[held], raw[held]), abs=1e-12
    )
    if method == "isotonic":
        plain = np.clip(calibrator._model.predict(fresh), 0.0, 1.0)
        assert len(np.unique(plain)) < len(fresh) // 10  # what the tie-break is for
        assert np.max(np.abs(calibrated - plain)) <= ISOTONIC_TIE_BREAK


def test_reason_contributions_explain_the_trees_that_score() -> None:
    """With early stopping the model scores with the best iteration's trees; the SHAP contributions plus
    the bias must add up to that score's log-odds, not to the full forest's."""
    from spanishgas.model.churn_model import Calibrator, ChurnModel, _logit, xgboost_pipeline

    rng = np.random.default_rng(5)
    features = ["a", "b", "c"]
    x = pd.DataFrame(rng.normal(size=(3000, 3)), columns=features)
    y = (rng.random(3000) < 1 / (1 + np.exp(-(x["a"] - 2)))).astype(int)
    pipe = xgboost_pipeline(features, {"n_estimators": 300, "max_depth": 3, "early_stopping_rounds": 5}, seed=1)
    pipe.fit(x[:2000], y[:2000], xgb__eval_set=[(x[2000:].to_numpy(), y[2000:])], xgb__verbose=False)
    assert pipe.named_steps["xgb"].get_booster().best_iteration + 1 < 300  # early stopping kicked in
    model = ChurnModel(pipe, Calibrator("platt").fit(rng.random(50), rng.integers(0, 2, 50)), features, 0.5, {})
    contributions, bias = model.contributions(x[:200])
    np.testing.assert_allclose(contributions.sum(axis=1) + bias, _logit(model.raw_scores(x[:200])), atol=1e-4)
    # so the one-pass score the batch job and the API use is the model's probability, and the raw scores
    # through the booster in place are the scikit-learn wrapper's
    matrix = model.matrix(x[:200])
    explained, again = model.explained_proba_matrix(matrix)
    np.testing.assert_allclose(explained, model.predict_proba_matrix(matrix), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(again, contributions)
    np.testing.assert_array_equal(model.raw_scores_matrix(matrix), pipe.named_steps["xgb"].predict_proba(matrix)[:, 1])


def test_the_split_uses_the_horizon_the_rows_were_labelled_with() -> None:
    from spanishgas.model.split import SplitError
    from spanishgas.model.train import label_horizon
    from spanishgas.settings import Settings

    settings = Settings()
    rows = pd.DataFrame({"horizon_days": [settings.label_horizon_days] * 3})
    assert label_horizon(settings, rows) == settings.label_horizon_days
    with pytest.raises(SplitError, match="labelled with horizon"):
        label_horizon(settings, rows.assign(horizon_days=settings.label_horizon_days + 30))


def test_truth_on_prefers_the_best_possible_and_says_when_it_falls_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from spanishgas.model.train import TRUTH_FILE, truth_on

    rows = pd.DataFrame({"customer_id": ["A", "B"], "as_of_date": [date(2024, 1, 1), date(2024, 1, 1)]})
    truth = rows.assign(p_true=[0.9, 0.1], p_observable=[0.6, 0.2])
    settings = Settings(truth_dir=tmp_path)
    truth.to_parquet(tmp_path / TRUTH_FILE)
    known = truth_on(settings, rows)
    assert known is not None
    assert known["best"].tolist() == [0.6, 0.2] and known["oracle"].tolist() == [0.9, 0.1]

    truth.drop(columns="p_observable").to_parquet(tmp_path / TRUTH_FILE)  # an older generator's file
    with pytest.warns(UserWarning, match="no p_observable"):
        known = truth_on(settings, rows)
    assert known is not None and known["best"] is known["oracle"]
    # rows the truth does not cover: no comparison at all rather than a partial one
    assert truth_on(settings, rows.assign(customer_id=["A", "Z"])) is None


def test_assigning_the_champion_without_the_gate_needs_a_reason() -> None:
    from spanishgas.model.registry import assign_champion

    with pytest.raises(ValueError, match="needs a reason"):
        assign_champion(Settings(), "1", reason="")
