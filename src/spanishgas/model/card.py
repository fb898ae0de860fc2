"""The model card: a markdown artifact saying what the model is for, what it was trained on, how well it
does and where it should not be trusted."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spanishgas.model.churn_model import ChurnModel
    from spanishgas.model.train import TrainReport
    from spanishgas.settings import Settings


def model_card(settings: Settings, model: ChurnModel, report: TrainReport) -> str:
    """Markdown model card of one training run."""
    t = report.test
    lines = [
        f"# Model card: {settings.model.registered_name} ({report.experiment})",
        "",
        "## Intended use",
        f"Ranks active customers by their probability of leaving within {settings.label_horizon_days} days, so",
        "the retention team and call-center agents know whom to call first and why. Not for pricing individual",
        "customers, credit decisions or any use that denies service.",
        "",
        "## Data",
        f"- Gold run `{report.gold_run_id}`, feature service `{report.feature_service}` "
        f"({len(model.features)} features, point in time).",
        f"- Forward split: {', '.join(f'{k} {v}' for k, v in report.split.items())}; a gap of one label horizon",
        "  separates the periods, so no label is known to an earlier period.",
        f"- Rows: {report.rows}.",
        "",
        "## Model",
        f"XGBoost in a scikit-learn pipeline, tuned with Optuna ({report.tuning['trials_complete']} complete and "
        f"{report.tuning['trials_pruned']} pruned trials), calibrated with {report.calibration} on the validation",
        f"period; decision threshold {report.threshold:.4f} maximizes precision at recall >= "
        f"{settings.model.recall_target:.2f} on validation. Risk tiers from calibrated probability: "
        + ", ".join(f"{k} >= {v}" for k, v in settings.model.risk_tiers.items())
        + ".",
        "",
        "## Forward test metrics",
        "| metric | value |",
        "|---|---|",
    ]
    for key in (
        "pr_auc",
        "roc_auc",
        "precision_at_threshold",
        "recall_at_threshold",
        "recall_top5",
        "lift_top5",
        "recall_top10",
        "lift_top10",
        "brier",
        "brier_uncalibrated",
        "ece",
    ):
        lines.append(f"| {key} | {t[key]:.4f} |")
    lines.append(f"| confusion at threshold | {t['confusion']} |")
    for name, values in report.baselines.items():
        lines.append(f"| {name} PR-AUC / ROC-AUC | {values['pr_auc']:.4f} / {values['roc_auc']:.4f} |")
    if report.truth:
        lines += [
            "",
            "## Against the ground truth (generated data)",
            "The best any model can do is the generator's churn probability given what was observable at each "
            f"as-of date: it reaches PR-AUC {report.truth['truth_pr_auc']:.4f} and ROC-AUC "
            f"{report.truth['truth_roc_auc']:.4f} on the same rows, and the model gets "
            f"{report.truth['pr_auc_vs_truth']:.1%} and {report.truth['roc_auc_vs_truth']:.1%} of them. The oracle, "
            "which also knows each customer's latent factors and the contacts still to come in the horizon, "
            f"reaches {report.truth.get('oracle_pr_auc', float('nan')):.4f} and "
            f"{report.truth.get('oracle_roc_auc', float('nan')):.4f}. A model clearly above the best possible "
            "(more than two standard errors) would be leaking; training refuses to "
            "finish if it is.",
        ]
        if not report.truth.get("truth_is_best_possible", 1.0):
            lines.append(
                "This delivery's truth predates the best-possible probability: the figures above compare "
                "the model with the oracle."
            )
    lines += [
        "",
        "## Limits",
        "- Churn is rare (a few percent per quarter), so precision stays modest even for a good ranking; use the",
        "  ranking and the tiers, not a yes/no.",
        "- Trained on monthly snapshots: a change within the month shows up at the next snapshot.",
        "- Segments or provinces with few customers have wider error than the figures above.",
        "- Reason codes explain the model, not the customer's true motive.",
    ]
    return "\n".join(lines) + "\n"
