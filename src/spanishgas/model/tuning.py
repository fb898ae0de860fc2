"""Optuna search over XGBoost hyperparameters: TPE, seeded, with median pruning on validation PR-AUC."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import xgboost

if TYPE_CHECKING:
    import optuna
    import pandas as pd

# Pruning needs intermediate values; reporting every few rounds keeps the callback cheap.
REPORT_EVERY = 10
MAX_ROUNDS = 800
EARLY_STOPPING = 50


class PruneOnValidation(xgboost.callback.TrainingCallback):
    """Reports validation PR-AUC to Optuna while trees are added and stops trials that trail the median."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        import optuna

        if epoch % REPORT_EVERY:
            return False
        value = float(evals_log["validation_0"]["aucpr"][-1])
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"validation PR-AUC {value:.4f} at round {epoch}")
        return False


def search_space(trial: optuna.Trial) -> dict[str, Any]:
    """XGBoost hyperparameters worth searching for a rare-event tabular problem."""
    return {
        "max_depth": trial.suggest_int("max_depth", 2, 6),
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 100.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
        "gamma": trial.suggest_float("gamma", 0.0, 5.0),
    }


def fit_xgboost(
    features: list[str],
    params: dict[str, Any],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    seed: int,
    callbacks: list[xgboost.callback.TrainingCallback] | None = None,
) -> Any:
    """Fit the XGBoost pipeline on ``train`` with early stopping on ``validation``'s PR-AUC."""
    from spanishgas.model.churn_model import xgboost_pipeline

    pipe = xgboost_pipeline(features, {**params, "n_estimators": MAX_ROUNDS}, seed)
    pipe.named_steps["xgb"].set_params(early_stopping_rounds=EARLY_STOPPING, callbacks=callbacks or [])
    x_val = pipe.named_steps["features"].fit(validation).transform(validation)
    pipe.fit(
        train, train["label"].to_numpy(), xgb__eval_set=[(x_val, validation["label"].to_numpy())], xgb__verbose=False
    )
    # The fitted model keeps no reference to a trial.
    pipe.named_steps["xgb"].set_params(callbacks=None)
    return pipe


def tune(
    features: list[str],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    *,
    storage: str,
    study_name: str,
    trials: int,
    timeout_s: int,
    seed: int,
) -> optuna.Study:
    """Run (or resume) a study until it holds ``trials`` finished or pruned trials or the time runs out."""
    import optuna
    from sklearn.metrics import average_precision_score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=10),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=8, n_warmup_steps=3 * REPORT_EVERY),
        load_if_exists=True,
    )
    y_val = validation["label"].to_numpy()

    def objective(trial: optuna.Trial) -> float:
        params = search_space(trial)
        pipe = fit_xgboost(features, params, train, validation, seed, [PruneOnValidation(trial)])
        trial.set_user_attr("best_iteration", int(pipe.named_steps["xgb"].best_iteration))
        return float(average_precision_score(y_val, pipe.predict_proba(validation)[:, 1]))

    done = sum(t.state.is_finished() for t in study.trials)
    remaining = max(0, trials - done)
    if remaining:
        from spanishgas.progress import steps

        with steps("training trials", total=remaining) as step:

            def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
                value = "pruned" if trial.value is None else f"validation PR-AUC {trial.value:.4f}"
                step(f"trial {trial.number} {value} (best {study.best_value:.4f})")

            study.optimize(objective, n_trials=remaining, timeout=timeout_s, gc_after_trial=False, callbacks=[report])
    return study


def best_params(study: optuna.Study) -> dict[str, Any]:
    """The best trial's hyperparameters (with its tree count) as XGBoost arguments."""
    trial = study.best_trial
    return {**trial.params, "n_estimators": int(trial.user_attrs.get("best_iteration", 0)) + 1}
