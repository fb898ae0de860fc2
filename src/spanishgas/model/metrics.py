"""Evaluation of churn probabilities: ranking, decision at a threshold, calibration, lift."""

from __future__ import annotations

from typing import Any

import numpy as np

from spanishgas.errors import PlatformError


def threshold_at_recall(y: np.ndarray, p: np.ndarray, recall_target: float) -> float:
    """The threshold with the highest precision among those whose recall is at least ``recall_target``."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y, p)
    # precision/recall have one more entry than thresholds (the point recall 0); drop it.
    ok = recall[:-1] >= recall_target
    if not ok.any():
        return float(thresholds.min())
    best = np.argmax(np.where(ok, precision[:-1], -1.0))
    return float(thresholds[best])


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """ECE over equal-count bins (churn is rare, so equal-width bins would leave most of them empty)."""
    order = np.argsort(p)
    total = 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk):
            total += len(chunk) * abs(float(p[chunk].mean()) - float(y[chunk].mean()))
    return total / len(p)


def top_share(y: np.ndarray, p: np.ndarray, share: float) -> tuple[float, float]:
    """Recall and lift among the ``share`` of customers with the highest scores."""
    n = max(1, round(share * len(p)))
    top = np.argsort(-p, kind="stable")[:n]
    positives = y.sum()
    recall = float(y[top].sum() / positives) if positives else 0.0
    base = positives / len(y) if len(y) else 0.0
    lift = float(y[top].mean() / base) if base else 0.0
    return recall, lift


def evaluate(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    """Every metric the model card and the promotion gate use."""
    from sklearn.metrics import average_precision_score, brier_score_loss, confusion_matrix, roc_auc_score

    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    predicted = (p >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, predicted, labels=[0, 1]).ravel()
    out: dict[str, Any] = {
        "rows": len(y),
        "positives": int(y.sum()),
        "pr_auc": float(average_precision_score(y, p)),
        "roc_auc": float(roc_auc_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "threshold": float(threshold),
        "precision_at_threshold": float(tp / (tp + fp)) if tp + fp else 0.0,
        "recall_at_threshold": float(tp / (tp + fn)) if tp + fn else 0.0,
        "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }
    for share in (0.05, 0.10):
        recall, lift = top_share(y, p, share)
        out[f"recall_top{int(share * 100)}"] = recall
        out[f"lift_top{int(share * 100)}"] = lift
    return out


def ranking_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """PR-AUC and ROC-AUC only (for baselines and the ground truth)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {"pr_auc": float(average_precision_score(y, p)), "roc_auc": float(roc_auc_score(y, p))}


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Hanley and McNeil's standard error of a ROC-AUC estimated from this many positives and negatives."""
    if positives == 0 or negatives == 0:
        return float("inf")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / (
        positives * negatives
    )
    return float(np.sqrt(max(var, 0.0)))


class LeakageSuspected(PlatformError, AssertionError):
    """The model ranks better than the ground-truth probabilities, which no honest model can."""


def compare_with_truth(model: dict[str, float], truth: dict[str, float], tolerance: float = 0.0) -> dict[str, float]:
    """The model's ROC-AUC and PR-AUC as fractions of the truth's on the same rows; raises
    :class:`LeakageSuspected` when the model's ROC-AUC beats the truth's by more than ``tolerance``.

    ``truth`` is the best any model can do: the generator's probability given what was observable at the
    as-of date (``p_observable``)."""
    ratios = {
        "roc_auc_vs_truth": model["roc_auc"] / truth["roc_auc"],
        "pr_auc_vs_truth": model["pr_auc"] / truth["pr_auc"],
    }
    if model["roc_auc"] > truth["roc_auc"] + tolerance:
        raise LeakageSuspected(
            f"model ROC-AUC {model['roc_auc']:.4f} is above the ground truth's {truth['roc_auc']:.4f} (given what "
            "was observable at each as-of date) on the same rows: a feature knows the future"
        )
    return ratios
