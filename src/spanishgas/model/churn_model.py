"""The churn model as it is trained, registered and served: a scikit-learn pipeline ending in XGBoost,
a probability calibrator, the decision threshold and the risk tiers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

TIER_ORDER = ("low", "medium", "high", "critical")


class FeatureFrame(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Selects the model's features in a fixed order as float64 (missing stays NaN: XGBoost routes it)."""

    def __init__(self, features: list[str]) -> None:
        self.features = features

    def fit(self, X: pd.DataFrame, y: Any = None) -> FeatureFrame:  # noqa: N803 - scikit-learn's names
        missing = [f for f in self.features if f not in X.columns]
        if missing:
            raise KeyError(f"feature frame lacks {missing}")
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        return X[self.features].to_numpy(dtype="float64", na_value=np.nan)


def xgboost_pipeline(features: list[str], params: dict[str, Any], seed: int) -> Pipeline:
    """Feature selection followed by an XGBoost classifier with ``params``."""
    from sklearn.pipeline import Pipeline
    from xgboost import XGBClassifier

    xgb = XGBClassifier(
        **params, objective="binary:logistic", tree_method="hist", n_jobs=2, random_state=seed, eval_metric="aucpr"
    )
    return Pipeline([("features", FeatureFrame(features)), ("xgb", xgb)])


def logistic_baseline(features: list[str], seed: int) -> Pipeline:
    """Median imputation, scaling and a logistic regression: the baseline a model must beat."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline(
        [
            ("features", FeatureFrame(features)),
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
            ("lr", LogisticRegression(max_iter=2000, random_state=seed)),
        ]
    )


def random_forest_baseline(features: list[str], seed: int) -> Pipeline:
    """Median imputation and a random forest: the second baseline."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    forest = RandomForestClassifier(n_estimators=300, min_samples_leaf=20, n_jobs=2, random_state=seed)
    return Pipeline(
        [("features", FeatureFrame(features)), ("impute", SimpleImputer(strategy="median")), ("rf", forest)]
    )


@dataclass
class Calibrator:
    """Maps raw scores to probabilities: isotonic regression or Platt scaling on the log-odds."""

    method: str
    _model: Any = None

    def fit(self, raw: np.ndarray, y: np.ndarray) -> Calibrator:
        """Fit on held-out scores and outcomes."""
        if self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            self._model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
        elif self.method == "platt":
            from sklearn.linear_model import LogisticRegression

            self._model = LogisticRegression(C=1e6).fit(_logit(raw)[:, None], y)
        else:
            raise ValueError(f"unknown calibration method {self.method!r}")
        return self

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities."""
        if self.method == "isotonic":
            return np.clip(self._model.predict(raw), 0.0, 1.0)
        return self._model.predict_proba(_logit(raw)[:, None])[:, 1]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def risk_tier(probability: float, cut_offs: dict[str, float]) -> str:
    """low / medium / high / critical from a calibrated probability and the configured cut-offs."""
    tier = "low"
    for name in TIER_ORDER[1:]:
        if probability >= cut_offs[name]:
            tier = name
    return tier


@dataclass
class ChurnModel:
    """Everything needed to score, decide and explain: what the registry stores and the API loads."""

    pipeline: Pipeline
    calibrator: Calibrator
    features: list[str]
    threshold: float
    risk_tiers: dict[str, float]
    metadata: dict[str, Any] = field(default_factory=dict)

    def raw_scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Uncalibrated XGBoost probabilities."""
        return self.pipeline.predict_proba(frame)[:, 1]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of churning within the label horizon."""
        return self.calibrator.transform(self.raw_scores(frame))

    def tiers(self, probabilities: np.ndarray) -> list[str]:
        """Risk tier of each probability."""
        return [risk_tier(float(p), self.risk_tiers) for p in probabilities]

    def contributions(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Exact SHAP contributions (log-odds) of each feature, and the bias, per row (XGBoost TreeSHAP)."""
        from xgboost import DMatrix

        matrix = self.pipeline.named_steps["features"].transform(frame)
        booster = self.pipeline.named_steps["xgb"].get_booster()
        contribs = booster.predict(DMatrix(matrix, feature_names=self.features), pred_contribs=True)
        return contribs[:, :-1], contribs[:, -1]
