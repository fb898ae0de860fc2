"""Train the churn model: point-in-time training set from the feature store, forward split, baselines,
Optuna-tuned XGBoost, calibration, decision threshold, evaluation against the ground truth when there is
one, and an MLflow run whose model is registered as the ``challenger``."""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from spanishgas.errors import service_call
from spanishgas.feature_registry import experiment_features
from spanishgas.feature_store.definitions import experiment_service_name
from spanishgas.model.churn_model import (
    Calibrator,
    ChurnModel,
    logistic_baseline,
    random_forest_baseline,
)
from spanishgas.model.metrics import (
    auc_standard_error,
    compare_with_truth,
    evaluate,
    ranking_metrics,
    threshold_at_recall,
)
from spanishgas.model.split import SplitError, TimeSplit, split_frame, time_split

if TYPE_CHECKING:
    from spanishgas.settings import Settings

TRUTH_FILE = "churn_probability_asof.parquet"


@dataclass
class TrainingData:
    """A labelled point-in-time training set and where it came from."""

    frame: pd.DataFrame
    features: list[str]
    experiment: str
    feature_service: str
    gold_run_id: str


@dataclass
class TrainReport:
    """What a training run produced and measured."""

    experiment: str
    feature_service: str
    gold_run_id: str
    split: dict[str, str]
    rows: dict[str, int]
    calibration: str
    threshold: float
    test: dict[str, Any]
    validation: dict[str, Any]
    baselines: dict[str, dict[str, float]]
    truth: dict[str, float] = field(default_factory=dict)
    tuning: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    mlflow_run_id: str = ""
    model_version: str = ""


def load_training_data(settings: Settings, experiment: str, service: str | None = None) -> TrainingData:
    """Gold's labelled rows joined with the experiment's feature service (or ``service``), point in time."""
    from spanishgas.feature_store.store import get_store, training_entities, training_set

    service = service or experiment_service_name(experiment)
    entities = training_entities(settings)
    frame = training_set(settings, entities, service, store=get_store(settings))
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"]).dt.date
    return TrainingData(frame, experiment_features(experiment), experiment, service, entities.attrs["gold_run_id"])


def label_horizon(settings: Settings, frame: pd.DataFrame) -> int:
    """The label horizon the rows were built with, which the split's gaps must cover. Gold records it
    with every row; a mismatch with the settings fails here rather than letting labels overlap."""
    if "horizon_days" not in frame.columns:
        return settings.label_horizon_days
    horizons = sorted({int(h) for h in frame["horizon_days"].dropna().unique()})
    if horizons != [settings.label_horizon_days]:
        raise SplitError(
            f"the training rows were labelled with horizon(s) {horizons} days but the settings say "
            f"{settings.label_horizon_days} (SPANISHGAS_LABEL_HORIZON_DAYS): rebuild gold or fix the setting"
        )
    return settings.label_horizon_days


def forward_split(settings: Settings, frame: pd.DataFrame) -> TimeSplit:
    """The forward split of the labelled rows with the settings' period sizes (training, the promotion
    gate and the ceiling benchmark must all cut the same way)."""
    return time_split(
        sorted(frame["as_of_date"].unique()),
        label_horizon(settings, frame),
        settings.model.validation_dates,
        settings.model.test_dates,
    )


def choose_calibration(raw: np.ndarray, y: np.ndarray, groups: np.ndarray) -> str:
    """Isotonic or Platt, whichever has the lower Brier score in two-fold cross-fitting over the
    validation rows (folds by customer, so one customer's snapshots stay together)."""
    from sklearn.metrics import brier_score_loss

    fold = np.array([int(hashlib.md5(str(g).encode()).hexdigest(), 16) % 2 for g in groups])
    scores = {}
    for method in ("isotonic", "platt"):
        losses = []
        for k in (0, 1):
            fit, held = fold != k, fold == k
            if y[fit].sum() == 0 or y[held].sum() == 0:
                continue
            calibrated = Calibrator(method).fit(raw[fit], y[fit]).transform(raw[held])
            losses.append(brier_score_loss(y[held], calibrated))
        scores[method] = float(np.mean(losses)) if losses else float("inf")
    return min(scores, key=lambda m: (scores[m], m != "platt"))


def truth_on(settings: Settings, rows: pd.DataFrame) -> dict[str, np.ndarray] | None:
    """Ground-truth probabilities for the rows (generated data only), or None when there is no truth.

    ``best`` is the best any model can do (the truth given what was observable at the as-of date,
    ``p_observable``); ``oracle`` also knows the latent factors and the horizon's events (``p_true``).
    A truth file from before ``p_observable`` existed gives the oracle for both.
    """
    path = Path(str(settings.truth_dir)) / TRUTH_FILE
    if not path.is_file():
        return None
    columns = pq.read_schema(path).names
    wanted = ["customer_id", "as_of_date", "p_true", *(["p_observable"] if "p_observable" in columns else [])]
    truth = pd.read_parquet(path, columns=wanted)
    truth["as_of_date"] = pd.to_datetime(truth["as_of_date"]).dt.date
    joined = rows[["customer_id", "as_of_date"]].merge(truth, on=["customer_id", "as_of_date"], how="left")
    if joined[wanted[2:]].isna().any().any():
        return None
    oracle = joined["p_true"].to_numpy()
    if "p_observable" not in joined:
        warnings.warn(
            f"{path} has no p_observable (written by an older generator): the model is compared with the "
            "oracle, which no model can reach; regenerate the delivery for the best-possible comparator",
            stacklevel=2,
        )
        return {"best": oracle, "oracle": oracle}
    return {"best": joined["p_observable"].to_numpy(), "oracle": oracle}


def fit_churn_model(
    data: TrainingData, split: TimeSplit, settings: Settings, trials: int, study_name: str | None = None
) -> tuple[ChurnModel, TrainReport, dict[str, np.ndarray]]:
    """Tune, fit, calibrate and evaluate on a split; returns the model, its report and test scores."""
    from spanishgas.model.tuning import fit_xgboost, tune

    started = time.perf_counter()
    train, validation, test = split_frame(data.frame, split)
    for name, part in (("train", train), ("validation", validation), ("test", test)):
        if part["label"].nunique() < 2:
            raise ValueError(f"the {name} period has only one class; more customers or dates are needed")
    seed, features = settings.seed, data.features
    y_val, y_test = validation["label"].to_numpy(), test["label"].to_numpy()

    baselines, baseline_scores = {}, {}
    for name, make in (("logistic_regression", logistic_baseline), ("random_forest", random_forest_baseline)):
        pipe = make(features, seed).fit(train, train["label"].to_numpy())
        baseline_scores[name] = pipe.predict_proba(test)[:, 1]
        baselines[name] = ranking_metrics(y_test, baseline_scores[name])

    tuning_started = time.perf_counter()
    storage = str(settings.optuna_storage)
    if storage.startswith("sqlite:///"):
        Path(storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    elif storage.rsplit("/", 1)[0] == settings.postgres.sqlalchemy_url().rsplit("/", 1)[0]:
        # The stack's own server: create the study database on first use, as the feature store does.
        from spanishgas.postgres import create_database

        create_database(settings, storage.rsplit("/", 1)[1].split("?", 1)[0])
    key = json.dumps([data.gold_run_id, data.experiment, split.describe(), seed], sort_keys=True)
    study_name = study_name or f"churn-{data.experiment}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    study = tune(
        features,
        train,
        validation,
        storage=storage,
        study_name=study_name,
        trials=trials,
        timeout_s=settings.model.tuning_timeout_s,
        seed=seed,
    )
    tuning_seconds = time.perf_counter() - tuning_started
    pipe = fit_xgboost(features, study.best_trial.params, train, validation, seed)

    raw_val = pipe.predict_proba(validation)[:, 1]
    method = choose_calibration(raw_val, y_val, validation["customer_id"].to_numpy())
    calibrator = Calibrator(method).fit(raw_val, y_val)
    p_val = calibrator.transform(raw_val)
    threshold = threshold_at_recall(y_val, p_val, settings.model.recall_target)
    model = ChurnModel(
        pipeline=pipe,
        calibrator=calibrator,
        features=features,
        threshold=threshold,
        risk_tiers=dict(settings.model.risk_tiers),
    )
    raw_test = model.raw_scores(test)
    p_test = calibrator.transform(raw_test)
    test_metrics = evaluate(y_test, p_test, threshold)
    test_metrics["brier_uncalibrated"] = float(np.mean((raw_test - y_test) ** 2))

    truth: dict[str, float] = {}
    known = truth_on(settings, test)
    if known is not None:
        model_metrics = ranking_metrics(y_test, p_test)
        truth_metrics = ranking_metrics(y_test, known["best"])
        oracle_metrics = ranking_metrics(y_test, known["oracle"])
        truth = {f"truth_{k}": v for k, v in truth_metrics.items()}
        truth |= {f"oracle_{k}": v for k, v in oracle_metrics.items()}
        truth |= {f"{k}_vs_oracle": model_metrics[k] / oracle_metrics[k] for k in ("roc_auc", "pr_auc")}
        # 1 when "truth" is the best possible (p_observable), 0 when an old truth file gave only the oracle
        truth["truth_is_best_possible"] = float(known["best"] is not known["oracle"])
        # Beating the best possible by more than sampling noise (two standard errors) means a feature knows
        # the future.
        noise = 2 * auc_standard_error(truth_metrics["roc_auc"], int(y_test.sum()), int((1 - y_test).sum()))
        truth.update(compare_with_truth(model_metrics, truth_metrics, tolerance=noise))

    states = [t.state.name for t in study.trials]
    report = TrainReport(
        experiment=data.experiment,
        feature_service=data.feature_service,
        gold_run_id=data.gold_run_id,
        split=split.describe(),
        rows={"train": len(train), "validation": len(validation), "test": len(test)},
        calibration=method,
        threshold=threshold,
        test=test_metrics,
        validation=evaluate(y_val, p_val, threshold),
        baselines=baselines,
        truth=truth,
        tuning={
            "study": study_name,
            "trials_complete": states.count("COMPLETE"),
            "trials_pruned": states.count("PRUNED"),
            "best_validation_pr_auc": float(study.best_value),
            "best_params": study.best_trial.params,
            "seconds": round(tuning_seconds, 1),
        },
    )
    report.seconds = round(time.perf_counter() - started, 1)
    model.metadata = {
        "experiment": data.experiment,
        "feature_service": data.feature_service,
        "gold_run_id": data.gold_run_id,
        "test_as_of": [str(d) for d in split.test],
    }
    return model, report, {"churn model": p_test, **baseline_scores}


# What a training whose registry went away leaves: the trials are in the Optuna study (keyed by the data),
# so the same command resumes the study, fits the same best model and registers it.
REGISTER_LATER = (
    "no alias moved; the finished trials are kept in the Optuna study, so `spanishgas train` run again with the"
    " same data once the server answers reuses them, fits the same model and registers it as the challenger"
)


def train(
    settings: Settings,
    experiment: str | None = None,
    trials: int | None = None,
    register: bool = True,
    data: TrainingData | None = None,
) -> TrainReport:
    """Train one experiment's model, log it to MLflow and, when ``register``, make it the challenger."""
    from spanishgas.model.registry import log_training_run, name_challenger
    from spanishgas.monitoring.reference import record_reference

    experiment = experiment or settings.model.experiment
    data = data or load_training_data(settings, experiment)
    split = forward_split(settings, data.frame)
    model, report, scores = fit_churn_model(data, split, settings, trials or settings.model.trials)
    _, test = split_frame(data.frame, split)[1:]
    with tempfile.TemporaryDirectory() as tmp:
        from spanishgas.model.plots import save_plots

        baselines = {k: v for k, v in scores.items() if k != "churn model"}
        plots = save_plots(model, test, scores["churn model"], baselines, Path(tmp) / "plots")
        with service_call("The MLflow tracking server", str(settings.mlflow_tracking_uri), REGISTER_LATER):
            run_id, version = log_training_run(
                settings, model, report, data, test, plots, register=register, test_probability=scores["churn model"]
            )
    # Drift is measured against the served model's own training rows (docs/monitoring.md).
    with service_call("The MLflow tracking server", str(settings.mlflow_tracking_uri), REGISTER_LATER):
        record_reference(settings, model, data.frame, split, version, run_id)
        if version:
            name_challenger(settings, version)  # last, so a training stopped before it moved no alias
    report.mlflow_run_id, report.model_version = run_id, version
    return report


def compare_experiments(settings: Settings, experiments: list[str], trials: int) -> pd.DataFrame:
    """Train each experiment set on the same split (logged, not registered) and tabulate test metrics."""
    rows = []
    for name in experiments:
        report = train(settings, name, trials, register=False)
        rows.append(
            {
                "experiment": name,
                "features": len(experiment_features(name)),
                "pr_auc": report.test["pr_auc"],
                "roc_auc": report.test["roc_auc"],
                "recall_top10": report.test["recall_top10"],
                "lift_top10": report.test["lift_top10"],
                "brier": report.test["brier"],
                "lr_pr_auc": report.baselines["logistic_regression"]["pr_auc"],
                **{k: v for k, v in report.truth.items() if k.endswith("vs_truth")},
                "mlflow_run_id": report.mlflow_run_id,
            }
        )
    return pd.DataFrame(rows)


def report_dict(report: TrainReport) -> dict[str, Any]:
    """The report as plain JSON-ready data."""
    return json.loads(json.dumps(asdict(report), default=str))


def gate_rows(settings: Settings, experiment: str) -> Any:
    """The challenger's training period and forward test rows, rebuilt from the feature store, for the
    promotion gate (with the ground truth's PR-AUC on the test rows when the data are generated).

    The rows carry every model feature (the entity rows are the experiment's either way), so a champion
    trained on another experiment set can be scored on them too."""
    from spanishgas.feature_store.definitions import MODEL_SERVICE
    from spanishgas.model.registry import GateRows

    data = load_training_data(settings, experiment, service=MODEL_SERVICE)
    split = forward_split(settings, data.frame)
    train_rows, _, test_rows = split_frame(data.frame, split)
    known = truth_on(settings, test_rows)
    truth_pr = None if known is None else ranking_metrics(test_rows["label"].to_numpy(), known["best"])["pr_auc"]
    return GateRows(train_rows, test_rows, truth_pr)


def promote_challenger(
    settings: Settings, floor: float | None = None, reason: str = "", experiment: str | None = None
) -> Any:
    """The promotion gate on the current challenger, judged on the forward test rows of its own
    experiment set (unless one is named); returns the gate's result."""
    from spanishgas.model.registry import CHALLENGER, alias_tags, promote

    if experiment is None:
        experiment = (alias_tags(settings, CHALLENGER) or {}).get("experiment_set", settings.model.experiment)
    return promote(settings, gate_rows(settings, experiment), floor=floor, reason=reason)
