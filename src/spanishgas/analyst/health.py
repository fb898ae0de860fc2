"""The model and its health as the analyst app shows them: each registered version's forward-test figures,
champion and challenger on the same test rows (PR, ROC, calibration, lift and gain by decile), the global
SHAP importance, the model card, the promotion decisions, and the monitoring runs over time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from spanishgas.settings import Settings

TEST_FIGURES = ("pr_auc", "roc_auc", "brier", "ece", "recall_top10", "lift_top10", "precision_at_threshold")
DECILES = 10
# Points a drawn curve keeps: thousands of test rows give thousands of steps, which the browser's chart
# library draws slowly and the eye cannot tell from a few hundred.
CURVE_POINTS = 300


def version_report(settings: Settings, version: str) -> dict[str, Any]:
    """What training recorded for a registered version: test and validation figures, split, threshold."""
    import mlflow

    from spanishgas.model.registry import configure

    client = configure(settings)
    found = client.get_model_version(settings.model.registered_name, version)
    report = mlflow.artifacts.load_dict(f"runs:/{found.run_id}/train_report.json")
    return {**report, "version": version, "run_id": found.run_id, "tags": dict(found.tags)}


def _run_id(settings: Settings, version: str) -> str:
    """The training run of a registered version (a registry call, no artifact read)."""
    from spanishgas.model.registry import configure

    return str(configure(settings).get_model_version(settings.model.registered_name, version).run_id)


def model_card(settings: Settings, version: str) -> str:
    """The version's model card (Markdown), as training wrote it."""
    import mlflow

    return str(mlflow.artifacts.load_text(f"runs:/{_run_id(settings, version)}/model_card.md"))


def importance(settings: Settings, version: str) -> pd.DataFrame:
    """Global SHAP importance (share of the mean absolute contribution) frozen with the version."""
    import mlflow

    profile = mlflow.artifacts.load_dict(f"runs:/{_run_id(settings, version)}/monitoring/reference_profile.json")
    shares = pd.Series(profile.get("importance", {}), name="share").sort_values(ascending=False)
    return shares[shares > 0].rename_axis("feature").reset_index()


def figures_side_by_side(reports: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Forward-test figures of each version (columns: champion, challenger)."""
    return pd.DataFrame({label: {k: r["test"].get(k) for k in TEST_FIGURES} for label, r in reports.items()})


@dataclass
class Curves:
    """Champion and challenger on forward test rows; ``basis`` says which rows, in words."""

    pr: pd.DataFrame
    roc: pd.DataFrame
    calibration: pd.DataFrame
    deciles: pd.DataFrame
    rows: int
    churners: int
    basis: str = ""
    same_rows: bool = True

    def caption(self) -> str:
        """Which rows the curves are drawn on, in words, with their size when they are one set."""
        size = f": {self.rows:,} customer-months, {self.churners:,} churners" if self.same_rows else ""
        return f"On {self.basis}{size}."


def curves(labels: np.ndarray, scores: dict[str, np.ndarray]) -> Curves:
    """PR and ROC curves, calibration by decile of the score, lift and cumulative gain by decile."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    pr, roc, calibration, deciles = [], [], [], []
    for label, p in scores.items():
        precision, recall, _ = precision_recall_curve(labels, p)
        keep = _thinned(len(recall))
        pr.append(pd.DataFrame({"model": label, "recall": recall[keep], "precision": precision[keep]}))
        fpr, tpr, _ = roc_curve(labels, p)
        keep = _thinned(len(fpr))
        roc.append(pd.DataFrame({"model": label, "false positive rate": fpr[keep], "true positive rate": tpr[keep]}))
        order = np.argsort(-p, kind="stable")
        bins = np.array_split(order, DECILES)
        base = labels.mean() if labels.mean() > 0 else np.nan
        caught = np.cumsum([labels[b].sum() for b in bins])
        for d, b in enumerate(bins, start=1):
            deciles.append(
                {
                    "model": label,
                    "decile": d,
                    "lift": labels[b].mean() / base,
                    "cumulative gain": caught[d - 1] / max(labels.sum(), 1),
                }
            )
            calibration.append({"model": label, "decile": d, "predicted": p[b].mean(), "observed": labels[b].mean()})
    return Curves(
        pd.concat(pr, ignore_index=True),
        pd.concat(roc, ignore_index=True),
        pd.DataFrame(calibration),
        pd.DataFrame(deciles),
        len(labels),
        int(labels.sum()),
    )


def _thinned(n: int) -> np.ndarray:
    """At most :data:`CURVE_POINTS` evenly spaced indices of a curve's ``n`` points, both ends kept."""
    return np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).round().astype(int))


def compare_on_test_rows(settings: Settings, versions: dict[str, str]) -> Curves:
    """Champion and challenger (``versions``: label -> version) on forward test rows, from the tables kept
    with each version (:mod:`spanishgas.model.test_scores`): the promotion gate's rows when the gate has
    compared these two, else each version's own test rows; versions trained before those tables were kept
    are scored on the current training set's test rows (slow: the period is rebuilt through Feast)."""
    from spanishgas.model.test_scores import GATE_SCORES, PROBABILITY, TEST_SCORES, read_scores, version_column

    run_ids = {label: _run_id(settings, v) for label, v in versions.items()}
    if len(versions) == 2:
        challenger = list(versions)[-1]
        gate = read_scores(run_ids[challenger], GATE_SCORES)
        columns = {label: version_column(v) for label, v in versions.items()}
        if gate is not None and set(columns.values()) <= set(gate.columns):
            found = curves(gate["label"].to_numpy(dtype=int), {k: gate[c].to_numpy() for k, c in columns.items()})
            found.basis = "the promotion gate's forward test rows (both models on the same customers)"
            return found
    own = {label: read_scores(run_id, TEST_SCORES) for label, run_id in run_ids.items()}
    kept = {label: table for label, table in own.items() if table is not None}
    if len(kept) == len(own):
        parts = [curves(t["label"].to_numpy(dtype=int), {k: t[PROBABILITY].to_numpy()}) for k, t in kept.items()]
        found = _stacked(parts)
        found.basis = (
            "its own forward test rows, kept at training"
            if len(parts) == 1
            else "each model's own forward test rows: the promotion gate has not compared these two yet "
            "(`spanishgas promote` scores both on the same rows)"
        )
        return found
    return score_on_current_test_rows(settings, versions)


def _stacked(parts: list[Curves]) -> Curves:
    """Curves of models measured on different rows, one table each."""
    return Curves(
        pd.concat([c.pr for c in parts], ignore_index=True),
        pd.concat([c.roc for c in parts], ignore_index=True),
        pd.concat([c.calibration for c in parts], ignore_index=True),
        pd.concat([c.deciles for c in parts], ignore_index=True),
        parts[0].rows,
        parts[0].churners,
        same_rows=len(parts) == 1,
    )


def score_on_current_test_rows(settings: Settings, versions: dict[str, str]) -> Curves:
    """Every version scored on the current training set's forward test rows (the promotion gate's rows)."""
    from spanishgas.model.registry import load_version
    from spanishgas.model.train import gate_rows

    experiment = version_report(settings, next(iter(versions.values())))["experiment"]
    rows = gate_rows(settings, experiment).test
    labels = rows["label"].to_numpy(dtype=int)
    scores = {label: load_version(settings, version=v).model.predict_proba(rows) for label, v in versions.items()}
    found = curves(labels, scores)
    found.basis = "the current training set's forward test rows, scored now"
    return found


def decisions(settings: Settings, limit: int = 50) -> pd.DataFrame:
    """Every promotion, refusal and rollback, newest first, with its reasons."""
    import mlflow

    from spanishgas.model.registry import DECISIONS_EXPERIMENT, configure

    client = configure(settings)
    experiment = client.get_experiment_by_name(DECISIONS_EXPERIMENT)
    if experiment is None:
        return pd.DataFrame(columns=["when", "decision", "challenger", "champion before", "reasons"])
    rows = []
    for run in client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=limit
    ):
        payload = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/decision.json")
        rows.append(
            {
                "when": pd.Timestamp(run.info.start_time, unit="ms", tz="UTC"),
                "decision": run.data.tags.get("decision", ""),
                "challenger": payload.get("challenger", payload.get("to", "")),
                "champion before": payload.get("champion_before", payload.get("from", "")),
                "reasons": "; ".join(payload.get("reasons", [])) or str(payload.get("reason", "")),
            }
        )
    return pd.DataFrame(rows)


@dataclass
class MonitoringHistory:
    """Every published monitoring run's drift, the latest cohorts, data quality and decision."""

    feature_drift: pd.DataFrame
    prediction_drift: pd.DataFrame
    performance: pd.DataFrame
    data_quality: pd.DataFrame
    decision: dict[str, Any]
    runs: int


def monitoring_history(settings: Settings) -> MonitoringHistory | None:
    """The monitoring runs over time (None before the first one)."""
    from spanishgas.lake_reader import LakeReader
    from spanishgas.monitoring.job import MONITORING_LAYER

    lake = LakeReader.from_settings(settings)
    runs = lake.published_runs(MONITORING_LAYER)
    if not runs:
        return None
    drift, prediction = [], []
    for run_id in runs:
        snapshot = lake.manifest(MONITORING_LAYER, run_id)["snapshot_date"]
        for name, into in (("feature_drift", drift), ("prediction_drift", prediction)):
            table = lake.read_table(MONITORING_LAYER, run_id, f"{name}.parquet").to_pandas()
            into.append(table.assign(monitoring_run=run_id, snapshot_date=pd.Timestamp(snapshot)))
    latest = runs[-1]
    manifest = lake.manifest(MONITORING_LAYER, latest)

    def table(name: str) -> pd.DataFrame:
        return lake.read_table(MONITORING_LAYER, latest, f"{name}.parquet").to_pandas()

    return MonitoringHistory(
        feature_drift=pd.concat(drift, ignore_index=True),
        prediction_drift=pd.concat(prediction, ignore_index=True),
        performance=table("performance"),
        data_quality=table("data_quality"),
        decision={**manifest["decision"], "run_id": latest, "snapshot_date": manifest["snapshot_date"]},
        runs=len(runs),
    )


def drift_over_time(history: MonitoringHistory, slice_name: str = "book") -> pd.DataFrame:
    """PSI per watched feature and snapshot (one column a feature), for a chart."""
    drift = history.feature_drift[history.feature_drift["slice"] == slice_name]
    wide = drift.pivot_table(index="snapshot_date", columns="feature", values="psi", aggfunc="max")
    return wide.sort_index()


def flagged_features(history: MonitoringHistory, monitoring_run: str | None) -> pd.DataFrame:
    """The features (per slice) a monitoring run found drifting: its rows whose level is not "ok"."""
    drift = history.feature_drift
    latest = drift[drift["monitoring_run"] == monitoring_run]
    return latest.loc[latest["level"] != "ok", ["feature", "slice", "level", "psi", "rules"]]


def retrain_verdict(decision: dict[str, Any]) -> str:
    """The retraining decision in two words or three."""
    return "retrain" if decision.get("retrain") else "keep the champion"


def top_decile_recall(deciles: pd.DataFrame) -> dict[str, float]:
    """Each model's share of the churners in its top-scored tenth of customers (the first decile's
    cumulative gain)."""
    return deciles[deciles["decile"] == 1].set_index("model")["cumulative gain"].astype(float).to_dict()


def decision_words(decision: dict[str, Any]) -> list[str]:
    """The retraining decision's explanations, one sentence each."""
    explanations = decision.get("explanations") or []
    if isinstance(explanations, str):
        explanations = json.loads(explanations)
    return [str(e) for e in explanations]
