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


# Share of the raw score blended into isotonic probabilities (see Calibrator.transform).
ISOTONIC_TIE_BREAK = 1e-6


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
        """Calibrated probabilities, in the same order as the raw scores.

        The fitted scikit-learn models' own arithmetic, without their input checks (which cost more than
        the arithmetic for the one row the API scores): linear interpolation between the isotonic
        thresholds, clipped to the fitted range, or the logistic of the fitted line on the log-odds.

        Isotonic regression is flat over each block and beyond the fitted range, so on its own it ties
        customers the model tells apart (17,879 test rows fell into 72 values in one full-scale run, and
        PR-AUC dropped from 0.174 to 0.157). A one-in-a-million share of the raw score breaks those ties:
        the order is the model's again and no probability moves by more than ``ISOTONIC_TIE_BREAK``."""
        raw = np.asarray(raw, dtype=float)
        m = self._model
        if self.method == "isotonic":
            if len(m.X_thresholds_) == 1:
                stepped = np.full(raw.shape, m.y_thresholds_[0])
            else:
                stepped = np.interp(np.clip(raw, m.X_min_, m.X_max_), m.X_thresholds_, m.y_thresholds_)
            stepped = np.clip(stepped, 0.0, 1.0)
            return (1.0 - ISOTONIC_TIE_BREAK) * stepped + ISOTONIC_TIE_BREAK * np.clip(raw, 0.0, 1.0)
        z = m.coef_[0, 0] * _logit(raw) + m.intercept_[0]
        return 1.0 / (1.0 + np.exp(-z))


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

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's features of ``frame`` as a float64 matrix in the model's order."""
        return self.pipeline.named_steps["features"].transform(frame)  # type: ignore[no-any-return]

    def raw_scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Uncalibrated XGBoost probabilities."""
        return self.raw_scores_matrix(self.matrix(frame))

    def raw_scores_matrix(self, x: np.ndarray) -> np.ndarray:
        """Uncalibrated probabilities of a feature matrix (columns in :attr:`features` order).

        The booster's own in-place prediction over the trees that score (what the scikit-learn wrapper's
        ``predict_proba`` computes, without its per-call checks: a third of a one-customer answer)."""
        booster = self.pipeline.named_steps["xgb"].get_booster()
        scores = booster.inplace_predict(
            np.ascontiguousarray(x, dtype=np.float64),
            iteration_range=self._trees(),
            predict_type="value",
            validate_features=False,
        )
        return np.asarray(scores, dtype=np.float64)  # the wrapper's dtype: float32 widened as it does

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of churning within the label horizon."""
        return self.predict_proba_matrix(self.matrix(frame))

    def predict_proba_matrix(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of a feature matrix (the batch job and the API both end here)."""
        return self.calibrator.transform(self.raw_scores_matrix(x))

    def tiers(self, probabilities: np.ndarray) -> list[str]:
        """Risk tier of each probability."""
        return [risk_tier(float(p), self.risk_tiers) for p in probabilities]

    def contributions(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Exact SHAP contributions (log-odds) of each feature, and the bias, per row (XGBoost TreeSHAP)."""
        return self.contributions_matrix(self.matrix(frame))

    def contributions_matrix(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact SHAP contributions and bias of each row of a feature matrix."""
        from xgboost import DMatrix

        xgb = self.pipeline.named_steps["xgb"]
        # columns are in the model's order by construction, so XGBoost's name checks are skipped
        matrix = DMatrix(x, nthread=xgb.n_jobs or -1)
        contribs = xgb.get_booster().predict(
            matrix, pred_contribs=True, iteration_range=self._trees(), validate_features=False
        )
        return contribs[:, :-1], contribs[:, -1]

    def _trees(self) -> tuple[int, int]:
        """The trees that score: with early stopping, up to the best iteration (as ``predict_proba``)."""
        best = getattr(self.pipeline.named_steps["xgb"].get_booster(), "best_iteration", None)
        return (0, best + 1) if best is not None else (0, 0)

    def explained_proba_matrix(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities and SHAP contributions of a feature matrix from one pass over the
        trees: TreeSHAP's contributions and bias add up to the model's log-odds (local accuracy), so the
        raw probability is their logistic instead of a second prediction (a quarter of a one-customer
        answer). Equal to :meth:`predict_proba_matrix` up to float32 rounding of the sum (tested)."""
        contributions, bias = self.contributions_matrix(x)
        margin = contributions.sum(axis=1, dtype=np.float64) + bias
        raw = 1.0 / (1.0 + np.exp(-margin))
        return self.calibrator.transform(raw), contributions

    def use_threads(self, n: int) -> ChurnModel:
        """Score with ``n`` threads. One suits a service answering one customer per call: starting
        OpenMP threads costs more than a 1-row prediction (measured: about 1 ms per call on 2 cores)."""
        xgb = self.pipeline.named_steps["xgb"]
        xgb.set_params(n_jobs=n)
        xgb.get_booster().set_param({"nthread": n})
        return self
