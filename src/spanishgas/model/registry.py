"""The MLflow side of the churn model: logging training runs, the registered model and its aliases
(``challenger`` for every new version, ``champion`` for the one that serves), promotion and rollback."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import mlflow.pyfunc
import pandas as pd

from spanishgas.errors import PlatformError
from spanishgas.model.churn_model import ChurnModel
from spanishgas.model.metrics import ranking_metrics
from spanishgas.model.test_scores import GATE_SCORES, PROBABILITY, TEST_SCORES, log_scores, scores_frame, version_column

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mlflow.tracking import MlflowClient

    from spanishgas.model.train import TrainingData, TrainReport
    from spanishgas.settings import Settings

CHAMPION, CHALLENGER = "champion", "challenger"
EXPERIMENT = "spanishgas-churn"
DECISIONS_EXPERIMENT = "spanishgas-churn-decisions"
# Registered-model tag listing champion versions in the order they were promoted (rollback pops it).
HISTORY_TAG = "champion_history"


class ChurnPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """The registered artifact: probability, risk tier and decision per row of features."""

    def __init__(self, churn_model: ChurnModel) -> None:
        self.churn_model = churn_model

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Score a frame holding the model's feature columns."""
        p = self.churn_model.predict_proba(model_input)
        return pd.DataFrame(
            {
                "churn_probability": p,
                "risk_tier": self.churn_model.tiers(p),
                "above_threshold": p >= self.churn_model.threshold,
            }
        )


def configure(settings: Settings) -> MlflowClient:
    """Point MLflow at the profile's tracking server and registry; returns a client."""
    from mlflow.tracking import MlflowClient

    uri = str(settings.mlflow_tracking_uri)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(str(settings.mlflow_registry_uri))
    return MlflowClient(tracking_uri=uri, registry_uri=str(settings.mlflow_registry_uri))


def experiment_id(settings: Settings, client: MlflowClient, name: str) -> str:
    """The id of an MLflow experiment, created (with artifacts beside the data locally) when missing."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if settings.profile == "local":
        # With a SQLite backend MLflow would put artifacts under the working directory; keep them with the data.
        location = (Path(str(settings.data_root)) / "mlflow" / "artifacts").resolve().as_uri()
    return str(client.create_experiment(name, artifact_location=location))


def _flat(prefix: str, values: dict[str, Any]) -> dict[str, float]:
    return {
        f"{prefix}{k}": float(v) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }


def log_training_run(
    settings: Settings,
    model: ChurnModel,
    report: TrainReport,
    data: TrainingData,
    test: pd.DataFrame,
    plots: list[Path],
    register: bool = True,
    test_probability: Any = None,
) -> tuple[str, str]:
    """Log a training run (parameters, metrics, plots, data version, model card, the test rows' scores,
    model with signature and input example); when ``register``, register the model and give the new version
    its tags (the challenger alias comes later: :func:`name_challenger`). Returns the run id and the model
    version ("" when not registered)."""
    from mlflow.models import infer_signature

    from spanishgas.model.card import model_card

    client = configure(settings)
    experiment = experiment_id(settings, client, EXPERIMENT)
    name = settings.model.registered_name
    example = test[model.features].head(5)
    wrapper = ChurnPyfunc(model)
    signature = infer_signature(example, wrapper.predict(None, example))
    with mlflow.start_run(experiment_id=experiment, run_name=f"train-{report.experiment}") as run:
        mlflow.set_tags(
            {
                "experiment_set": report.experiment,
                "feature_service": report.feature_service,
                "gold_run_id": report.gold_run_id,
                "calibration": report.calibration,
            }
        )
        mlflow.log_params(
            {
                "experiment_set": report.experiment,
                "feature_service": report.feature_service,
                "gold_run_id": report.gold_run_id,
                "features": len(model.features),
                "horizon_days": settings.label_horizon_days,
                "calibration": report.calibration,
                "recall_target": settings.model.recall_target,
                "seed": settings.seed,
                **{f"split_{k}": v for k, v in report.split.items()},
                **{f"xgb_{k}": v for k, v in report.tuning["best_params"].items()},
            }
        )
        metrics = {**_flat("test_", report.test), **_flat("val_", report.validation), **_flat("", report.truth)}
        for base, values in report.baselines.items():
            metrics.update(_flat(f"baseline_{base}_test_", values))
        metrics.update(_flat("tuning_", {k: v for k, v in report.tuning.items() if k != "best_params"}))
        metrics["train_seconds"] = report.seconds
        mlflow.log_metrics(metrics)
        for path in plots:
            mlflow.log_artifact(str(path), "plots")
        mlflow.log_dict(json.loads(json.dumps(asdict(report), default=str)), "train_report.json")
        mlflow.log_text(model_card(settings, model, report), "model_card.md")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=wrapper,
            signature=signature,
            input_example=example,
            registered_model_name=name if register else None,
        )
        run_id = run.info.run_id
    if test_probability is not None:
        log_scores(client, run_id, scores_frame(test, {PROBABILITY: test_probability}), TEST_SCORES)
    version = ""
    if register:
        version = str(info.registered_model_version)
        for key, value in {
            "experiment_set": report.experiment,
            "feature_service": report.feature_service,
            "gold_run_id": report.gold_run_id,
            "test_pr_auc": f"{report.test['pr_auc']:.4f}",
            "test_as_of": ",".join(model.metadata.get("test_as_of", [])),
        }.items():
            client.set_model_version_tag(name, version, key, value)
    return run_id, version


def name_challenger(settings: Settings, version: str) -> None:
    """Give a registered version the challenger alias: the last step of a training, once everything the
    version needs (its tags, its monitoring reference) is in place."""
    configure(settings).set_registered_model_alias(settings.model.registered_name, CHALLENGER, version)


@dataclass
class LoadedModel:
    """A registered version loaded for scoring."""

    name: str
    version: str
    alias: str
    model: ChurnModel
    run_id: str
    tags: dict[str, str]


def load_version(settings: Settings, alias: str = CHAMPION, version: str | None = None) -> LoadedModel:
    """The model behind an alias (or a version number) of the registered churn model."""
    client = configure(settings)
    name = settings.model.registered_name
    mv = client.get_model_version(name, version) if version else client.get_model_version_by_alias(name, alias)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{mv.version}")
    churn_model = pyfunc.unwrap_python_model().churn_model
    return LoadedModel(name, str(mv.version), alias if not version else "", churn_model, str(mv.run_id), dict(mv.tags))


def alias_version(settings: Settings, alias: str) -> str | None:
    """The version an alias points at, or None."""
    found = _aliased(settings, alias)
    return None if found is None else str(found.version)


def alias_tags(settings: Settings, alias: str) -> dict[str, str] | None:
    """The tags of the version an alias points at (experiment set, gold run, ...), or None."""
    found = _aliased(settings, alias)
    return None if found is None else dict(found.tags)


def _aliased(settings: Settings, alias: str) -> Any:
    from mlflow.exceptions import MlflowException

    client = configure(settings)
    try:
        return client.get_model_version_by_alias(settings.model.registered_name, alias)
    except MlflowException:
        return None


@dataclass
class GateResult:
    """The promotion gate's verdict and every figure it used."""

    promoted: bool
    challenger: str
    champion_before: str | None
    reasons: list[str]
    figures: dict[str, float]


def evaluate_gate(
    settings: Settings,
    challenger: dict[str, float],
    baseline_pr_auc: float,
    champion: dict[str, float] | None,
    truth_pr_auc: float | None,
    floor: float | None = None,
) -> tuple[bool, list[str]]:
    """Apply the promotion rules to PR-AUCs measured on the same forward test rows."""
    floor = settings.model.pr_auc_floor if floor is None else floor
    ok, reasons = True, []
    pr = challenger["pr_auc"]
    if pr <= baseline_pr_auc:
        ok = False
        reasons.append(f"PR-AUC {pr:.4f} does not beat the logistic-regression baseline ({baseline_pr_auc:.4f})")
    else:
        reasons.append(f"beats the logistic-regression baseline ({pr:.4f} > {baseline_pr_auc:.4f})")
    if champion is not None:
        margin = settings.model.champion_margin
        if pr < champion["pr_auc"] - margin:
            ok = False
            reasons.append(
                f"PR-AUC {pr:.4f} is worse than the champion's {champion['pr_auc']:.4f} by more than {margin}"
            )
        else:
            reasons.append(f"within {margin} of the champion or better ({pr:.4f} vs {champion['pr_auc']:.4f})")
    if pr < floor:
        ok = False
        if truth_pr_auc is not None and truth_pr_auc < floor:
            reasons.append(
                f"PR-AUC {pr:.4f} is below the floor {floor:.2f}, and the data cannot support that floor: the "
                f"ground-truth probabilities themselves reach only {truth_pr_auc:.4f} on these rows. Lower "
                "SPANISHGAS_MODEL__PR_AUC_FLOOR (or pass --floor) deliberately if the business accepts it"
            )
        else:
            reasons.append(f"PR-AUC {pr:.4f} is below the floor {floor:.2f}")
    else:
        reasons.append(f"clears the PR-AUC floor {floor:.2f}")
    return ok, reasons


@dataclass
class GateRows:
    """The rows a promotion decision is made on: every model is scored on the same forward test rows."""

    train: pd.DataFrame
    test: pd.DataFrame
    truth_pr_auc: float | None = None


def promote(settings: Settings, rows: GateRows, floor: float | None = None, reason: str = "") -> GateResult:
    """Move ``champion`` to the challenger if it passes the gate on ``rows.test`` (the forward test rows
    of the current training set): it beats a logistic regression trained on ``rows.train``, is not worse
    than the current champion by more than the configured margin, and clears the PR-AUC floor."""
    from spanishgas.model.churn_model import logistic_baseline

    client = configure(settings)
    name = settings.model.registered_name
    challenger = load_version(settings, CHALLENGER)
    champion_version = alias_version(settings, CHAMPION)
    figures: dict[str, float] = {}
    labels = rows.test["label"].to_numpy()
    probabilities = {version_column(challenger.version): challenger.model.predict_proba(rows.test)}
    chall = ranking_metrics(labels, probabilities[version_column(challenger.version)])
    figures.update({f"challenger_{k}": v for k, v in chall.items()})
    champ, not_comparable = None, None
    if champion_version and champion_version != challenger.version:
        champion_model = load_version(settings, CHAMPION).model
        retired = retired_features(champion_model, rows.test.columns)
        if retired:
            # A feature was retired since the champion was trained (ADR 0012): it cannot be scored on
            # today's rows, so the comparison the gate asks for is impossible, and the gate says so.
            not_comparable = (
                f"champion v{champion_version} needs features the feature store no longer serves "
                f"({', '.join(retired)}): it cannot be scored on these rows, so the challenger is judged on "
                "the baseline and the floor only"
                + ("" if reason else "; that takes the operator's word: pass --reason to promote on those alone")
            )
        else:
            probabilities[version_column(champion_version)] = champion_model.predict_proba(rows.test)
            champ = ranking_metrics(labels, probabilities[version_column(champion_version)])
            figures.update({f"champion_{k}": v for k, v in champ.items()})
    features = challenger.model.features
    lr = logistic_baseline(features, settings.seed).fit(rows.train, rows.train["label"].to_numpy())
    baseline_pr = ranking_metrics(rows.test["label"].to_numpy(), lr.predict_proba(rows.test)[:, 1])["pr_auc"]
    figures["baseline_lr_pr_auc"] = baseline_pr
    truth_pr = rows.truth_pr_auc
    if truth_pr is not None:
        figures["truth_pr_auc"] = float(truth_pr)
    ok, reasons = evaluate_gate(settings, chall, baseline_pr, champ, truth_pr, floor)
    if not_comparable:
        # Without the champion comparison a worse model could pass: an operator must say why to go on.
        ok = ok and bool(reason)
        reasons.append(not_comparable)
    if floor is not None and floor != settings.model.pr_auc_floor:
        reasons.append(f"floor set to {floor} by the operator (configured {settings.model.pr_auc_floor})")
    if reason:
        reasons.append(f"operator's reason: {reason}")
    if ok and champion_version == challenger.version:
        reasons.append(f"v{challenger.version} is already the champion: nothing moved")
    elif ok:
        _move_champion(client, name, challenger.version)
    result = GateResult(ok, challenger.version, champion_version, reasons, figures)
    # the rows both were judged on, kept with the challenger for the analyst app's curves
    log_scores(client, challenger.run_id, scores_frame(rows.test, probabilities), GATE_SCORES)
    log_decision(settings, client, "promote" if ok else "promotion-refused", asdict(result))
    return result


def _move_champion(client: MlflowClient, name: str, version: str) -> None:
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps([*_history(client, name), version]))


def assign_champion(settings: Settings, version: str, reason: str) -> None:
    """Make ``version`` the champion without the gate, recorded as an ``assign`` decision with the reason.

    For set-ups where the gate's verdict is not the point (a test's serving path, a demo on a few hundred
    rows); ``spanishgas promote`` always goes through the gate."""
    if not reason:
        raise ValueError("assigning the champion without the gate needs a reason")
    client = configure(settings)
    name = settings.model.registered_name
    before = alias_version(settings, CHAMPION)
    _move_champion(client, name, version)
    log_decision(settings, client, "assign", {"version": version, "champion_before": before, "reason": reason})


def rollback(settings: Settings, reason: str = "") -> dict[str, Any]:
    """Move ``champion`` back to the version that held it before the current one."""
    client = configure(settings)
    name = settings.model.registered_name
    history = _history(client, name)
    current = alias_version(settings, CHAMPION)
    if current is None or len(history) < 2:
        raise RollbackError("no earlier champion to roll back to")
    previous = history[-2]
    client.set_registered_model_alias(name, CHAMPION, previous)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[:-1]))
    outcome = {"from_version": current, "to_version": previous, "reason": reason or "not given"}
    log_decision(settings, client, "rollback", outcome)
    return outcome


class RollbackError(PlatformError, RuntimeError):
    """There is nothing to roll back to."""


class RetiredFeatures(PlatformError, RuntimeError):
    """A registered model needs features the pipeline no longer builds (retrain and promote)."""


def retired_features(model: ChurnModel, columns: Iterable[str]) -> list[str]:
    """The model's features missing from ``columns`` (retired since the model was trained)."""
    available = set(columns)
    return [f for f in model.features if f not in available]


def _history(client: MlflowClient, name: str) -> list[str]:
    tags = client.get_registered_model(name).tags
    return list(json.loads(tags.get(HISTORY_TAG, "[]")))


def log_decision(settings: Settings, client: MlflowClient, kind: str, payload: dict[str, Any]) -> None:
    """Every promotion, refusal, assignment, rollback and import is an MLflow run with its reasons."""
    experiment = experiment_id(settings, client, DECISIONS_EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment, run_name=kind):
        mlflow.set_tag("decision", kind)
        mlflow.log_dict(json.loads(json.dumps(payload, default=str)), "decision.json")
        figures = payload.get("figures", {})
        if figures:
            mlflow.log_metrics({k: float(v) for k, v in figures.items()})
