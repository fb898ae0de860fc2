"""Evaluation plots saved as PNG artifacts: PR curve, calibration curve, lift chart, SHAP summary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from spanishgas.model.churn_model import ChurnModel


def _figure():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers
    import matplotlib.pyplot as plt

    return plt


def save_plots(
    model: ChurnModel, test: pd.DataFrame, p: np.ndarray, baselines: dict[str, np.ndarray], out: Path
) -> list[Path]:
    """Write the four evaluation plots for the test rows into ``out``; returns their paths."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve

    plt = _figure()
    out.mkdir(parents=True, exist_ok=True)
    y = test["label"].to_numpy()
    paths = []

    fig, ax = plt.subplots(figsize=(6, 5))
    for name, scores in {"churn model": p, **baselines}.items():
        precision, recall, _ = precision_recall_curve(y, scores)
        ax.plot(recall, precision, label=name)
    ax.axhline(y.mean(), ls=":", c="grey", label="base rate")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall on the forward test rows")
    ax.legend()
    paths.append(_save(fig, out / "pr_curve.png"))

    fig, ax = plt.subplots(figsize=(6, 5))
    frac, mean = calibration_curve(y, p, n_bins=10, strategy="quantile")
    ax.plot(mean, frac, marker="o", label="churn model (calibrated)")
    top = max(float(mean.max()), float(frac.max()))
    ax.plot([0, top], [0, top], ls=":", c="grey", label="perfect")
    ax.set(xlabel="predicted probability", ylabel="observed churn rate", title="Calibration (deciles)")
    ax.legend()
    paths.append(_save(fig, out / "calibration_curve.png"))

    fig, ax = plt.subplots(figsize=(6, 5))
    order = np.argsort(-p, kind="stable")
    captured = np.cumsum(y[order]) / max(1, y.sum())
    share = np.arange(1, len(y) + 1) / len(y)
    ax.plot(share, captured / share, label="lift")
    ax.axhline(1.0, ls=":", c="grey")
    ax.set(xlabel="share of customers contacted (highest risk first)", ylabel="lift", xlim=(0, 0.5))
    ax.set_title("Lift over random selection")
    paths.append(_save(fig, out / "lift_chart.png"))

    import shap

    sample = test.sample(n=min(2000, len(test)), random_state=0)
    contribs, _ = model.contributions(sample)
    shap.summary_plot(contribs, sample[model.features], show=False, max_display=20)
    fig = plt.gcf()
    paths.append(_save(fig, out / "shap_summary.png"))
    return paths


def _save(fig, path: Path) -> Path:  # type: ignore[no-untyped-def]
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _figure().close(fig)
    return path
