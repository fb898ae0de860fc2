"""Monitoring statistics, rules and the retraining decision, against independent computations."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spanishgas.monitoring import stats
from spanishgas.monitoring.decision import AGE, DECAY, FEATURE_DRIFT, PREDICTION_DRIFT, DecisionInputs, decide
from spanishgas.monitoring.rules import ALERT, OK, WARN, load_thresholds
from spanishgas.settings import MonitoringSettings

pytestmark = pytest.mark.unit

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
values_with_missing = arrays(np.float64, st.integers(1, 300), elements=st.one_of(finite, st.just(np.nan)))


@given(reference=values_with_missing, current=values_with_missing)
@settings(max_examples=200, deadline=None)
def test_every_value_falls_in_exactly_one_bin(reference: np.ndarray, current: np.ndarray) -> None:
    edges = stats.decile_edges(reference)
    assert np.all(np.diff(edges) > 0)
    counts = stats.bin_counts(current, edges)
    assert len(counts) == len(edges) + 2 and counts.sum() == len(current)
    assert counts[-1] == np.isnan(current).sum()
    # each value's bin by a plain loop over the open-ended intervals
    by_hand = np.zeros(len(edges) + 2, dtype=int)
    for v in current:
        if np.isnan(v):
            by_hand[-1] += 1
        else:
            by_hand[sum(v >= e for e in edges)] += 1
    assert by_hand.tolist() == counts.tolist()


@given(value=finite, n=st.integers(1, 200))
def test_a_constant_feature_has_one_value_bin_and_no_drift_against_itself(value: float, n: int) -> None:
    x = np.full(n, value)
    edges = stats.decile_edges(x)
    assert len(edges) == 0
    assert stats.bin_counts(x, edges).tolist() == [n, 0]
    assert stats.psi(stats.bin_counts(x, edges), stats.bin_counts(x, edges)) == pytest.approx(0.0)


def test_deciles_put_a_tenth_of_a_continuous_reference_in_each_bin() -> None:
    x = np.random.default_rng(1).normal(size=10_000)
    counts = stats.bin_counts(x, stats.decile_edges(x))
    assert counts[-1] == 0 and np.allclose(counts[:-1], 1_000, atol=2)


def test_psi_by_hand_and_empty_bins_stay_finite() -> None:
    # shares 0.5/0.5 -> 0.25/0.75: (0.25-0.5) ln(0.5) + (0.75-0.5) ln(1.5)
    expected = -0.25 * np.log(0.5) + 0.25 * np.log(1.5)
    assert stats.psi(np.array([50, 50]), np.array([25, 75])) == pytest.approx(expected)
    value = stats.psi(np.array([100, 0, 0]), np.array([0, 0, 100]))
    assert np.isfinite(value) and value > 10


def test_ks_equals_scipy() -> None:
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(3)
    for a, b in ((rng.normal(size=500), rng.normal(0.2, 1.3, 700)), (rng.integers(0, 5, 300), rng.integers(0, 6, 90))):
        assert stats.ks_statistic(a, b) == pytest.approx(ks_2samp(a, b).statistic, abs=1e-12)
    with_nan = np.array([1.0, np.nan, 2.0, 3.0])
    assert stats.ks_statistic(with_nan, np.array([2.0, 5.0])) == pytest.approx(ks_2samp([1, 2, 3], [2, 5]).statistic)


def test_js_distance_equals_scipy_base_2() -> None:
    from scipy.spatial.distance import jensenshannon

    for p, q in (([10, 20, 30, 0], [5, 5, 40, 10]), ([1, 0], [0, 1]), ([3, 3], [3, 3])):
        assert stats.js_distance(np.array(p), np.array(q)) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9)


def test_chi_square_equals_scipy_without_correction() -> None:
    from scipy.stats import chi2_contingency

    reference, current = np.array([120, 30, 50, 0]), np.array([90, 60, 40, 0])
    expected = chi2_contingency(np.vstack([reference[:3], current[:3]]), correction=False).pvalue
    assert stats.chi_square_p(reference, current) == pytest.approx(expected, rel=1e-9)
    assert stats.chi_square_p(np.array([5, 0]), np.array([7, 0])) == 1.0


def test_ece_by_hand() -> None:
    from spanishgas.model.metrics import expected_calibration_error

    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.3, 0.6, 0.8])
    # two equal-count bins: |0.2 - 0| and |0.7 - 1|, each half the rows
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(0.5 * 0.2 + 0.5 * 0.3)


def test_thresholds_judge_each_rule_and_yaml_overrides(tmp_path: Path) -> None:
    settings = MonitoringSettings()
    thresholds = load_thresholds(settings)
    assert thresholds.judge("x", {"psi": 0.05}) == (OK, [])
    assert thresholds.judge("x", {"psi": 0.12}) == (WARN, ["psi>=0.1"])
    assert thresholds.judge("x", {"psi": 0.3, "missing": 0.06}) == (ALERT, ["psi>=0.25", "missing>=0.05"])
    path = tmp_path / "thresholds.yaml"
    path.write_text("features:\n  x: {psi: [0.4, 0.8]}\n")
    overridden = load_thresholds(replace_settings(settings, thresholds_file=path))
    assert overridden.judge("x", {"psi": 0.3}) == (OK, []) and overridden.judge("y", {"psi": 0.3})[0] == ALERT
    path.write_text("features:\n  x: {psi: [0.8, 0.4]}\n")
    with pytest.raises(ValueError, match="warn <= alert"):
        load_thresholds(replace_settings(settings, thresholds_file=path))


def replace_settings(settings: MonitoringSettings, **updates: object) -> MonitoringSettings:
    return settings.model_copy(update=updates)


QUIET = DecisionInputs(
    model_version="3",
    model_age_days=10,
    drifted_importance_share=0.05,
    alert_features=["peak_share_12m"],
    prediction_drift_level=WARN,
    prediction_rules="psi>=0.1",
    decayed_cohorts=["2024-03-01"],
    latest_cohort_decayed=False,
)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"model_age_days": 36}, AGE),
        ({"drifted_importance_share": 0.2}, FEATURE_DRIFT),
        ({"prediction_drift_level": ALERT}, PREDICTION_DRIFT),
        ({"latest_cohort_decayed": True}, DECAY),
    ],
)
def test_the_decision_flips_for_each_reason_alone(change: dict, reason: str) -> None:
    settings = MonitoringSettings()
    quiet = decide(QUIET, settings)
    assert not quiet.retrain and quiet.reasons == [] and "holds" in quiet.explanations[0]
    flipped = decide(replace(QUIET, **change), settings)
    assert flipped.retrain and flipped.reasons == [reason]
    assert flipped.as_dict()["figures"]["model_version"] == "3"


def test_the_decision_just_under_each_threshold_does_not_retrain() -> None:
    settings = MonitoringSettings()
    near = replace(QUIET, model_age_days=35, drifted_importance_share=0.199)
    assert not decide(near, settings).retrain


def test_cohort_metrics_equal_scikit_learn() -> None:
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    from spanishgas.monitoring.performance import cohort_metrics

    rng = np.random.default_rng(5)
    p = rng.uniform(0, 0.4, 2_000)
    y = (rng.uniform(size=2_000) < p).astype(int)
    got = cohort_metrics(y, p)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert got["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert got["brier"] == pytest.approx(brier_score_loss(y, p))
    assert got["observed_churn_rate"] == pytest.approx(y.mean()) and got["expected_churn_rate"] == pytest.approx(
        p.mean()
    )


def test_one_hot_groups_read_as_one_categorical() -> None:
    from spanishgas.monitoring.reference import group_labels

    frame = pd.DataFrame({"is_channel_office": [1.0, 0.0, 0.0, np.nan], "is_channel_own_web": [0.0, 1.0, 0.0, 0.0]})
    labels = group_labels(frame, list(frame.columns), "is_channel_")
    assert labels.tolist() == ["office", "own_web", "none", None]


def test_ks_p_value_equals_scipy_asymptotic() -> None:
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(8)
    a, b = rng.normal(size=800), rng.normal(0.1, 1, 600)
    d = stats.ks_statistic(a, b)
    assert stats.ks_p_value(d, len(a), len(b)) == pytest.approx(ks_2samp(a, b, method="asymp").pvalue, rel=1e-6)


def test_category_p_value_is_an_exact_binomial_test_per_category() -> None:
    from scipy.stats import binomtest

    reference, current = np.array([995, 5]), np.array([20, 10])
    share = (5 + 0.5) / (1000 + 1.0)
    by_hand = min(binomtest(10, 30, share).pvalue, binomtest(20, 30, 1 - share).pvalue) * 2
    assert stats.category_p_value(reference, current) == pytest.approx(min(1.0, by_hand), rel=1e-6)
    # one customer in a 0.5 % category among 30 is not surprising; fifteen are
    assert stats.category_p_value(reference, np.array([29, 1])) > 0.01
    assert stats.category_p_value(reference, np.array([15, 15])) < 1e-12


def test_relative_spread_by_hand() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, np.nan])
    assert stats.relative_spread(x) == pytest.approx((4.0 - 2.0) / 3.0)
    assert stats.relative_spread(np.array([np.nan])) == 0.0 and stats.relative_spread(np.array([-1.0, 0.0, 1.0])) == 0.0


def test_a_pr_auc_drop_counts_only_beyond_the_cohorts_noise() -> None:
    from spanishgas.monitoring.performance import decay

    settings = MonitoringSettings()
    reference = {"pr_auc": 0.16, "ece": 0.01}
    few = {"pr_auc": 0.11, "ece": 0.012, "churners": 32}  # -31 %, but two standard errors are 0.11
    judged, decayed, rules, figures = decay(few, reference, settings)
    assert judged and not decayed and rules[0].startswith("not significant")
    many = {**few, "churners": 3_000}
    assert decay(many, reference, settings)[1] and figures["pr_auc_drop"] == pytest.approx(0.3125)
    assert decay({**few, "ece": 0.07}, reference, settings)[1]  # the ECE rule alone
    assert not decay({**few, "churners": 5}, reference, settings)[0]


def _manifest(root: Path, layer: str, run_id: str, manifest: dict, published: bool) -> None:
    import json

    folder = root / layer / "runs" / run_id
    folder.mkdir(parents=True)
    (folder / "_manifest.json").write_text(json.dumps(manifest))
    if published:
        (root / layer / "_published").mkdir(parents=True, exist_ok=True)
        (root / layer / "_published" / f"{run_id}.json").write_text(json.dumps(manifest))


def test_data_quality_reads_failed_runs_schema_changes_and_quarantine_shares(tmp_path: Path) -> None:
    from spanishgas.lake_reader import LakeReader
    from spanishgas.monitoring.quality import quality_tables

    files = {
        "customer_contracts.csv": {
            "table": "customer_contracts",
            "rows_in": 200,
            "rows_accepted": 190,
            "quarantined_by_reason": {"bad date": 6, "unknown region": 4},
            "mapped_to_unknown": {"region": {"rows": 3, "values": {"atlantis": 3}}},
            "columns": ["customer_id", "region"],
            "columns_ignored": [],
            "columns_absent": [],
        }
    }
    _manifest(tmp_path, "bronze", "bronze-1", {"status": "published", "files": files, "seconds_total": 3}, True)
    changed = {
        "customer_contracts.csv": {
            **files["customer_contracts.csv"],
            "columns": ["customer_id", "region", "x"],
            "columns_ignored": ["x"],
            "quarantined_by_reason": {},
        }
    }
    failed = {"status": "failed", "files": changed, "gates": {"customer_contracts": {"success": False}}}
    _manifest(tmp_path, "bronze", "bronze-2", failed, False)
    silver = {
        "status": "published",
        "bronze_run": "bronze-1",
        "quarantined_by_reason": {"customer_contracts": {"conflicting duplicate": 19}},
        "duplicates": {"customer_contracts": {"exact_duplicates_dropped": 7, "conflicting_rows_quarantined": 19}},
    }
    _manifest(tmp_path, "silver", "silver-1", silver, True)
    (tmp_path / "gold" / "runs" / "gold-killed").mkdir(parents=True)  # killed before it wrote its manifest
    runs, quarantine = quality_tables(LakeReader(str(tmp_path)))
    by_run = runs.set_index("run_id")
    assert by_run.loc["bronze-1", "quarantine_share"] == pytest.approx(10 / 200) and by_run.loc["bronze-1", "published"]
    assert by_run.loc["bronze-2", "status"] == "failed" and by_run.loc["bronze-2", "gate_failures"] == 1
    assert "extra column x (ignored)" in by_run.loc["bronze-2", "schema_changes"]
    assert "columns changed since the previous run" in by_run.loc["bronze-2", "schema_changes"]
    assert by_run.loc["silver-1", "quarantine_share"] == pytest.approx(19 / 190)
    # repeated lines dropped and values mapped to "unknown" are outcomes too, not quarantine
    assert by_run.loc["silver-1", "rows_dropped_duplicate"] == 7
    assert by_run.loc["bronze-1", "values_mapped_unknown"] == by_run.loc["bronze-2", "values_mapped_unknown"] == 3
    assert by_run.loc["bronze-1", "rows_dropped_duplicate"] == 0
    assert by_run.loc["gold-killed", "status"] == "incomplete" and not by_run.loc["gold-killed", "published"]
    assert quarantine.groupby("run_id")["rows"].sum().to_dict() == {"bronze-1": 10, "silver-1": 19}
