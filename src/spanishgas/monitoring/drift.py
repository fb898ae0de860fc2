"""Feature drift and prediction drift of the latest gold snapshot against the champion's reference."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from spanishgas.monitoring import stats
from spanishgas.monitoring.reference import (
    ALL_MONTHS,
    BOOK,
    INTAKE,
    MONTH_COLUMN,
    NUMERIC,
    ReferenceProfile,
    as_of_months,
    counts_of,
    in_intake,
    one_hot_groups,
    slice_key,
    watched_values,
)
from spanishgas.monitoring.rules import ALERT, OK, Thresholds, judge_checks, level_rank

FEATURE_DRIFT_COLUMNS = [
    "feature",
    "slice",
    "reference_slice",
    "kind",
    "rows_reference",
    "rows_current",
    "judged",
    "psi",
    "ks",
    "js_distance",
    "chi2_p",
    "p_value",
    "level_change",
    "spread_change",
    "missing_reference",
    "missing_current",
    "missing_change",
    "importance",
    "level",
    "rules",
]


def reference_slice_for(profile: ReferenceProfile, slice_name: str, month: str, min_rows: int) -> str:
    """The reference slice a snapshot's slice is compared with. The book: the same calendar month of the
    reference, else the nearest calendar month it has (with at least ``min_rows`` rows), never the pooled
    months, which mix seasons and the first months' short histories. The intake: pooled."""
    if slice_name != BOOK or month == ALL_MONTHS:
        return slice_key(slice_name, ALL_MONTHS)
    target = int(month)
    months = [
        int(key.split(":")[1])
        for key, part in profile.slices.items()
        if key.startswith(f"{BOOK}:") and not key.endswith(ALL_MONTHS) and part["rows"] >= min_rows
    ]
    if not months:
        return slice_key(BOOK, ALL_MONTHS)
    # circular distance between calendar months; on a tie the month before (the same season, just past)
    nearest = min(months, key=lambda m: (min((target - m) % 12, (m - target) % 12), (m - target) % 12))
    return slice_key(BOOK, f"{nearest:02d}")


def _sample_for(sample: pd.DataFrame, reference_key: str, intake_months: int) -> pd.DataFrame:
    slice_name, month = reference_key.split(":")
    rows = sample if month == ALL_MONTHS else sample[sample[MONTH_COLUMN] == month]
    return rows[in_intake(rows, intake_months)] if slice_name == INTAKE else rows


def column_drift(
    profile: ReferenceProfile,
    name: str,
    reference: dict[str, Any],
    current: pd.DataFrame,
    reference_values: np.ndarray | None,
) -> dict[str, Any]:
    """Every statistic of one watched column: current rows against one reference slice. A money level is
    compared on its shape (the snapshot scaled to the reference's median) and its median's move."""
    kind = profile.kinds[name]
    numeric = kind == NUMERIC
    ref_counts = np.asarray(reference["counts"][name], dtype=np.int64)
    values = watched_values(current, name, profile.features)
    level_change = spread_change = None
    if numeric and name in reference.get("median", {}) and len(values) and not np.isnan(values).all():
        median, ref_median = float(np.nanmedian(values)), reference["median"][name]
        level_change = abs(median / ref_median - 1) if ref_median else None
        spread_change = abs(stats.relative_spread(values) - reference["spread"][name])
        if median:  # the shape: the snapshot scaled to the reference's median
            values = values * (ref_median / median)
    cur_counts = counts_of(values, kind, profile.edges.get(name, []), profile.categories.get(name, []))
    if numeric and reference_values is not None:
        ks = stats.ks_statistic(reference_values, values)
        present = (~np.isnan(reference_values)).sum(), (~np.isnan(values)).sum()
        p_value = stats.ks_p_value(ks, int(present[0]), int(present[1]))
    else:
        ks = None
        p_value = stats.category_p_value(ref_counts, cur_counts)
    missing_cur = float(cur_counts[-1] / len(current)) if len(current) else 0.0
    missing_ref = float(reference["missing"][name])
    return {
        "feature": name,
        "kind": kind,
        "psi": stats.psi(ref_counts, cur_counts),
        "ks": ks,
        "js_distance": None if numeric else stats.js_distance(ref_counts, cur_counts),
        "chi2_p": None if numeric else stats.chi_square_p(ref_counts, cur_counts),
        "p_value": p_value,
        "level_change": level_change,
        "spread_change": spread_change,
        "missing_reference": missing_ref,
        "missing_current": missing_cur,
        "missing_change": abs(missing_cur - missing_ref),
    }


def judge_column(
    row: dict[str, Any], thresholds: Thresholds, significance: float, judged: bool, min_rows: int
) -> tuple[str, list[str]]:
    """A column's level and the rules it broke. An effect size over its threshold counts only when the
    difference is also significant (p below ``significance``): on a few dozen customers PSI is mostly
    noise, while on 20,000 every difference is significant and only the effect size tells. A level
    (``resources/monitoring.yaml``) is judged on its median's move and its spread instead of PSI and KS."""
    if not judged:
        return OK, [f"not judged: fewer than {min_rows} rows"]
    name = row["feature"]
    if row["level_change"] is not None:  # a level: judged on where its median went and how it spreads
        shape = {"level": row["level_change"], "spread": row["spread_change"]}
    else:
        shape = {"psi": row["psi"], "ks": row["ks"], "js": row["js_distance"]}
    level, broken = thresholds.judge(name, shape)
    if level != OK and row["p_value"] >= significance:
        level, broken = OK, [f"not significant (p={row['p_value']:.2g}): {', '.join(broken)}"]
    missing_level, missing_broken = thresholds.judge(name, {"missing": row["missing_change"]})
    if level_rank(missing_level) > level_rank(level):
        level = missing_level
    return level, broken + missing_broken


def feature_drift(
    profile: ReferenceProfile,
    sample: pd.DataFrame,
    snapshot: pd.DataFrame,
    thresholds: Thresholds,
    min_rows: int,
    significance: float,
) -> pd.DataFrame:
    """One row per watched column and slice (the book; the intake for acquisition attributes): PSI on
    the reference bins, KS (numeric), Jensen-Shannon distance and chi-square p-value (categorical), the
    p-value that gates the rules, the move of a money level's median, the change in missing share, and
    the level with the rules broken. A slice with fewer than ``min_rows`` rows on either side is reported
    but not judged."""
    month = str(as_of_months(snapshot.head(1))[0]) if len(snapshot) else ALL_MONTHS
    current = {BOOK: snapshot, INTAKE: snapshot[in_intake(snapshot, profile.intake_months)]}
    rows = []
    for slice_name, frame in current.items():
        key = reference_slice_for(profile, slice_name, month, min_rows)
        reference = profile.slices[key]
        ref_sample = _sample_for(sample, key, profile.intake_months)
        judged = min(reference["rows"], len(frame)) >= min_rows
        for name in reference["counts"]:
            ref_values = ref_sample[name].to_numpy(dtype=float, na_value=np.nan) if name in ref_sample else None
            row = column_drift(profile, name, reference, frame, ref_values)
            level, broken = judge_column(row, thresholds, significance, judged, min_rows)
            rows.append(
                {
                    **row,
                    "slice": slice_name,
                    "reference_slice": key,
                    "rows_reference": int(reference["rows"]),
                    "rows_current": len(frame),
                    "judged": judged,
                    "importance": importance_of(profile, name),
                    "level": level,
                    "rules": ", ".join(broken),
                }
            )
    return pd.DataFrame(rows, columns=FEATURE_DRIFT_COLUMNS)


def importance_of(profile: ReferenceProfile, name: str) -> float:
    """A feature's share of the model's importance; a one-hot group's is the sum of its flags'."""
    members = one_hot_groups(profile.features).get(name, [name])
    return float(sum(profile.importance.get(f, 0.0) for f in members))


def drifted_importance_share(profile: ReferenceProfile, drift: pd.DataFrame, level: str = ALERT) -> float:
    """Share of the model's importance carried by the features at ``level`` in any judged slice; a
    one-hot group stands for its flags, each counted once."""
    hit = set(drift.loc[(drift["level"] == level) & drift["judged"], "feature"])
    groups = one_hot_groups(profile.features)
    features = {f for name in hit for f in groups.get(name, [name])}
    return float(sum(profile.importance.get(f, 0.0) for f in features))


def prediction_drift(
    profile: ReferenceProfile,
    probability: np.ndarray,
    tiers: list[str],
    psi_bounds: tuple[float, float],
    rate_bounds: tuple[float, float],
) -> dict[str, Any]:
    """The churn score's PSI on the test period's deciles, the expected churn rate (mean probability)
    against the reference's, and the risk-tier mix, with the level and rules broken."""
    score = profile.score
    counts = stats.bin_counts(probability, np.asarray(score["edges"], dtype=float))
    value = stats.psi(np.asarray(score["counts"]), counts)
    mean, reference_mean = float(np.mean(probability)), float(score["mean_probability"])
    change = abs(mean - reference_mean) / reference_mean if reference_mean else 0.0
    level, broken = judge_checks([("psi", value, psi_bounds), ("expected_rate", change, rate_bounds)])
    shares = pd.Series(tiers).value_counts(normalize=True)
    return {
        "rows": len(probability),
        "psi": value,
        "expected_churn_rate": mean,
        "reference_churn_rate": reference_mean,
        "expected_rate_change": change,
        "tier_shares": json.dumps({str(k): float(v) for k, v in shares.items()}, sort_keys=True),
        "reference_tier_shares": json.dumps(score["tier_shares"], sort_keys=True),
        "level": level,
        "rules": ", ".join(broken),
    }
