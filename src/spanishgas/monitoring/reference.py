"""The reference profile frozen with each model version: what the model's training set looked like.

Drift is always measured against the served model's own training rows, so the profile is written at
training time as an artifact of the MLflow run (``monitoring/``), and an older champion keeps its own.

Consumption and prices are seasonal: a January snapshot against a reference pooled over the year drifts
with nothing wrong. The profile therefore keeps the counts of every feature per calendar month of the
training rows (``book:MM``) beside the pooled ones (``book:all``); drift compares a snapshot with the same
month of the reference when the reference has enough rows there. A second slice, ``intake``, holds the
customers who had joined within ``intake_months`` of their as-of date: the acquisition mix moves there
months before it moves the whole book.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from spanishgas.errors import PlatformError
from spanishgas.feature_registry import features as registry_features
from spanishgas.model.metrics import evaluate
from spanishgas.monitoring import stats

if TYPE_CHECKING:
    from spanishgas.model.churn_model import ChurnModel
    from spanishgas.settings import Settings

ARTIFACT_DIR = "monitoring"
PROFILE_FILE = "reference_profile.json"
SAMPLE_FILE = "reference_sample.parquet"
NUMERIC, CATEGORICAL = "numeric", "categorical"
BOOK, INTAKE = "book", "intake"
ALL_MONTHS = "all"
TENURE = "tenure_months"
MONTH_COLUMN = "_as_of_month"
# One-hot flags that together say one thing: each group is also watched as one categorical.
ONE_HOT_GROUPS = {"sales_channel": "is_channel_", "renewal_window": "renewal_bucket_"}
NO_FLAG = "none"


class ReferenceMissing(PlatformError, LookupError):
    """A model version has no reference profile (registered before monitoring existed)."""


def slice_key(slice_name: str, month: str = ALL_MONTHS) -> str:
    """``book:01`` .. ``book:12``, ``book:all``, ``intake:all``."""
    return f"{slice_name}:{month}"


def static_features() -> set[str]:
    """Attributes fixed when the customer joined (window ``static`` in the registry): the intake slice
    watches these."""
    return {f.name for f in registry_features() if f.window == "static"}


def one_hot_groups(features: list[str]) -> dict[str, list[str]]:
    """The one-hot groups whose flags the model uses (at least two of them)."""
    groups = {name: [f for f in features if f.startswith(prefix)] for name, prefix in ONE_HOT_GROUPS.items()}
    return {name: flags for name, flags in groups.items() if len(flags) >= 2}


def group_labels(frame: pd.DataFrame, flags: list[str], prefix: str) -> np.ndarray:
    """The group's value per row: the name of the flag that is set, ``none`` when none is, missing when a
    flag is missing."""
    values = frame[flags].to_numpy(dtype=float, na_value=np.nan)
    names = np.array([f.removeprefix(prefix) for f in flags], dtype=object)
    labels = np.where(values.max(axis=1) >= 0.5, names[np.argmax(values, axis=1)], NO_FLAG).astype(object)
    labels[np.isnan(values).any(axis=1)] = None
    return labels


@lru_cache(maxsize=1)
def semantics() -> dict[str, Any]:
    """``resources/monitoring.yaml``: the features judged on their level and spread."""
    raw = yaml.safe_load(resources.files("spanishgas.resources").joinpath("monitoring.yaml").read_text()) or {}
    return {"levels": list(raw.get("levels") or [])}


def watched_values(frame: pd.DataFrame, name: str, features: list[str]) -> np.ndarray:
    """The values of a watched column: a model feature, or a one-hot group's label."""
    if name in ONE_HOT_GROUPS:
        return group_labels(frame, one_hot_groups(features)[name], ONE_HOT_GROUPS[name])
    return frame[name].to_numpy(dtype=float, na_value=np.nan)


@dataclass
class ReferenceProfile:
    """Bins, counts and shares of the training rows, the score and calibration of the test period."""

    model_version: str
    run_id: str
    features: list[str]
    kinds: dict[str, str]
    edges: dict[str, list[float]]
    categories: dict[str, list[str]]
    slices: dict[str, dict[str, Any]]
    importance: dict[str, float]
    score: dict[str, Any]
    test: dict[str, Any]
    intake_months: int
    trained_through: str
    levels: list[str] = field(default_factory=list)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def watched(self) -> list[str]:
        """Every watched column: the model's features, then its one-hot groups."""
        return list(self.kinds)

    def to_json(self) -> str:
        """The profile as JSON."""
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> ReferenceProfile:
        """A profile from :meth:`to_json`'s text."""
        return cls(**json.loads(text))


def feature_kinds(frame: pd.DataFrame, features: list[str]) -> dict[str, str]:
    """Flags (every value 0 or 1) and one-hot groups are categorical; the rest numeric."""
    kinds = {}
    for name in features:
        x = frame[name].to_numpy(dtype=float, na_value=np.nan)
        x = x[~np.isnan(x)]
        kinds[name] = CATEGORICAL if len(x) and np.isin(x, (0.0, 1.0)).all() else NUMERIC
    kinds.update(dict.fromkeys(one_hot_groups(features), CATEGORICAL))
    return kinds


def counts_of(values: np.ndarray, kind: str, edges: list[float], categories: list[str]) -> np.ndarray:
    """Bin counts of one column's values with the reference's bins."""
    if kind == NUMERIC:
        return stats.bin_counts(values, np.asarray(edges, dtype=float))
    if values.dtype != object:
        values = np.where(np.isnan(values), None, np.where(values >= 0.5, "1", "0")).astype(object)
    return stats.category_counts(values, categories)


def in_intake(frame: pd.DataFrame, intake_months: int) -> np.ndarray:
    """Rows of customers who joined within ``intake_months`` of the as-of date (none without tenure)."""
    if TENURE not in frame:
        return np.zeros(len(frame), dtype=bool)
    return (frame[TENURE].to_numpy(dtype=float, na_value=np.nan) < intake_months).astype(bool)


# A snapshot's 12-month windows are full once the delivery has this many months before it.
FULL_HISTORY_MONTHS = 12


def latest_per_calendar_month(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """For each calendar month, the rows of its latest as-of date whose 12-month windows are full (the
    first months of a delivery have short histories, and their counts and trends read low): the most
    recent season with a whole year behind it. A month only the first year holds has no slice; drift then
    uses the nearest month that has one."""
    from spanishgas.etl.gold import WARMUP_MONTHS

    dates = pd.to_datetime(rows["as_of_date"])
    mature = dates.min() + pd.DateOffset(months=FULL_HISTORY_MONTHS - WARMUP_MONTHS)
    if (dates >= mature).any():
        dates = dates.where(dates >= mature)
    out = {}
    for month in sorted(set(dates.dropna().dt.strftime("%m"))):
        latest = dates[dates.dt.strftime("%m") == month].max()
        out[month] = rows[(dates == latest).to_numpy()]
    return out


def as_of_months(frame: pd.DataFrame) -> np.ndarray:
    """Calendar month ("01".."12") of each row's as-of date."""
    return pd.to_datetime(frame["as_of_date"]).dt.strftime("%m").to_numpy()


def slice_profile(
    frame: pd.DataFrame,
    columns: list[str],
    kinds: dict[str, str],
    edges: dict,
    categories: dict,
    features: list[str],
    levels: list[str],
) -> dict[str, Any]:
    """Rows, counts per bin and missing share of each column over one slice of rows, and the median and
    spread of each level."""
    out: dict[str, Any] = {"rows": len(frame), "counts": {}, "missing": {}, "median": {}, "spread": {}}
    for name in columns:
        values = watched_values(frame, name, features)
        counts = counts_of(values, kinds[name], edges.get(name, []), categories.get(name, []))
        out["counts"][name] = counts.tolist()
        out["missing"][name] = float(counts[-1] / len(frame)) if len(frame) else 0.0
        if name in levels and len(frame) and not np.isnan(values).all():
            out["median"][name] = float(np.nanmedian(values))
            out["spread"][name] = stats.relative_spread(values)
            out["spread"][name] = stats.relative_spread(values)
    return out


def build_profile(
    model: ChurnModel,
    reference_rows: pd.DataFrame,
    train_rows: pd.DataFrame,
    test_rows: pd.DataFrame,
    test_probability: np.ndarray,
    intake_months: int,
    model_version: str = "",
    run_id: str = "",
) -> ReferenceProfile:
    """The reference profile of a model: bin edges from its training period's rows; counts over every
    labelled snapshot of its training set (``reference_rows``: the training, validation and test periods
    and the gaps between them, so that each calendar month has its own slice on a delivery of 22 months or
    more); importance, score distribution and calibration from its test period."""
    features = list(model.features)
    kinds = feature_kinds(train_rows, features)
    known = semantics()
    levels = [n for n in known["levels"] if kinds.get(n) == NUMERIC]
    edges = {
        n: stats.decile_edges(watched_values(train_rows, n, features)).tolist() for n in features if kinds[n] == NUMERIC
    }
    categories = {
        n: ["0", "1"] if n in features else sorted({str(v) for v in watched_values(train_rows, n, features) if v})
        for n, k in kinds.items()
        if k == CATEGORICAL
    }

    def profile_of(rows: pd.DataFrame, columns: list[str]) -> dict[str, Any]:
        return slice_profile(rows, columns, kinds, edges, categories, features, levels)

    watched = list(kinds)
    slices = {slice_key(BOOK): profile_of(reference_rows, watched)}
    for month, rows in latest_per_calendar_month(reference_rows).items():
        slices[slice_key(BOOK, month)] = profile_of(rows, watched)
    intake_columns = [n for n in watched if n in static_features() or n in ONE_HOT_GROUPS]
    intake = reference_rows[in_intake(reference_rows, intake_months)]
    slices[slice_key(INTAKE)] = profile_of(intake, intake_columns)
    return ReferenceProfile(
        model_version=model_version,
        run_id=run_id,
        features=features,
        kinds=kinds,
        edges=edges,
        categories=categories,
        slices=slices,
        importance=importance(model, test_rows),
        score=score_profile(model, test_probability),
        test=test_profile(test_rows, test_probability, model.threshold),
        intake_months=intake_months,
        trained_through=str(pd.to_datetime(train_rows["as_of_date"]).max().date()),
        levels=levels,
    )


def importance(model: ChurnModel, rows: pd.DataFrame) -> dict[str, float]:
    """Mean absolute SHAP contribution of each feature on ``rows``, as shares summing to 1."""
    contributions, _ = model.contributions_matrix(model.matrix(rows))
    mean_abs = np.abs(contributions).mean(axis=0)
    total = float(mean_abs.sum()) or 1.0
    return {name: float(v / total) for name, v in zip(model.features, mean_abs, strict=True)}


def score_profile(model: ChurnModel, probability: np.ndarray) -> dict[str, Any]:
    """The test period's churn-score distribution: decile bins, mean probability, risk-tier mix."""
    edges = stats.decile_edges(probability)
    tiers = pd.Series(model.tiers(probability)).value_counts(normalize=True)
    return {
        "edges": edges.tolist(),
        "counts": stats.bin_counts(probability, edges).tolist(),
        "mean_probability": float(np.mean(probability)),
        "tier_shares": {str(k): float(v) for k, v in tiers.items()},
        "tier_cut_offs": dict(model.risk_tiers),
        "rows": len(probability),
    }


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Mean probability and observed churn rate in equal-count bins of the probability."""
    order = np.argsort(p, kind="stable")
    out = []
    for i, chunk in enumerate(np.array_split(order, bins)):
        if len(chunk):
            out.append(
                {
                    "bin": i,
                    "rows": len(chunk),
                    "mean_probability": float(p[chunk].mean()),
                    "observed_rate": float(y[chunk].mean()),
                }
            )
    return out


def test_profile(test_rows: pd.DataFrame, probability: np.ndarray, threshold: float) -> dict[str, Any]:
    """The test period's figures a matured cohort is compared with."""
    y = test_rows["label"].to_numpy().astype(int)
    figures = evaluate(y, probability, threshold)
    return {
        **{k: figures[k] for k in ("rows", "positives", "pr_auc", "roc_auc", "brier", "ece")},
        "observed_rate": float(y.mean()),
        "expected_rate": float(np.mean(probability)),
        "calibration": calibration_table(y, probability),
        "as_of": sorted({str(d) for d in pd.to_datetime(test_rows["as_of_date"]).dt.date}),
    }


def reference_sample(rows: pd.DataFrame, features: list[str], per_month: int, seed: int) -> pd.DataFrame:
    """Up to ``per_month`` rows of each calendar month's slice (the KS statistic needs values, not bins)."""
    parts = []
    for month, part in latest_per_calendar_month(rows).items():
        picked = part[features].sample(min(len(part), per_month), random_state=seed)
        parts.append(picked.assign(**{MONTH_COLUMN: month}))
    return pd.concat(parts, ignore_index=True)


def log_reference(settings: Settings, run_id: str, profile: ReferenceProfile, sample: pd.DataFrame) -> None:
    """Write the profile and its sample into the MLflow run's ``monitoring/`` artifacts."""
    from spanishgas.model.registry import configure

    client = configure(settings)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / PROFILE_FILE).write_text(profile.to_json())
        sample.to_parquet(folder / SAMPLE_FILE, index=False)
        client.log_artifacts(run_id, str(folder), ARTIFACT_DIR)


def load_reference(settings: Settings, run_id: str, version: str) -> tuple[ReferenceProfile, pd.DataFrame]:
    """The profile and sample of a model version's training run; :class:`ReferenceMissing` when absent."""
    from mlflow.exceptions import MlflowException

    from spanishgas.model.registry import configure

    client = configure(settings)
    names = {a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(run_id, ARTIFACT_DIR)}
    if PROFILE_FILE not in names:
        raise ReferenceMissing(
            f"model version {version} has no reference profile (registered before monitoring existed): build it "
            f"from its recorded training set with `spanishgas monitor --reference-for {version}`"
        )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = Path(client.download_artifacts(run_id, ARTIFACT_DIR, tmp))
        except MlflowException as exc:  # pragma: no cover - a registry whose artifacts are unreachable
            raise ReferenceMissing(f"cannot read the reference profile of version {version}: {exc}") from exc
        profile = ReferenceProfile.from_json((local / PROFILE_FILE).read_text())
        sample = pd.read_parquet(local / SAMPLE_FILE)
    return profile, sample


def record_reference(
    settings: Settings, model: ChurnModel, frame: pd.DataFrame, split: Any, version: str, run_id: str
) -> ReferenceProfile:
    """Build the profile of a model from the rows of its forward split and log it into its run."""
    from spanishgas.model.split import split_frame

    train_rows, _, test_rows = split_frame(frame, split)
    monitoring = settings.monitoring
    probability = model.predict_proba(test_rows)
    profile = build_profile(model, frame, train_rows, test_rows, probability, monitoring.intake_months, version, run_id)
    sample = reference_sample(frame, model.features, monitoring.reference_sample_rows, settings.seed)
    log_reference(settings, run_id, profile, sample)
    return profile


def rebuild_reference(settings: Settings, version: str) -> ReferenceProfile:
    """The profile of a version registered before monitoring existed, rebuilt from its recorded training
    set: the feature store must still hold the gold run it was trained on, and the split must cut the same."""
    from spanishgas.model.registry import configure, load_version
    from spanishgas.model.train import forward_split, load_training_data

    loaded = load_version(settings, version=version)
    params = configure(settings).get_run(loaded.run_id).data.params
    data = load_training_data(settings, params.get("experiment_set", settings.model.experiment))
    recorded = params.get("gold_run_id", "")
    if data.gold_run_id != recorded:
        raise ReferenceMissing(
            f"version {version} was trained on gold run {recorded}, but the feature store now holds "
            f"{data.gold_run_id}: load that run (`spanishgas features load --gold-run {recorded}`) and retry, "
            "or train and promote a model on the current data"
        )
    split = forward_split(settings, data.frame)
    changed = [
        f"{period}: {params['split_' + period]} then, {now} now"
        for period, now in split.describe().items()
        if params.get("split_" + period) not in (None, now)
    ]
    if changed:
        raise ReferenceMissing(
            f"the split settings now cut the training set differently from version {version}'s run "
            f"({'; '.join(changed)}): restore SPANISHGAS_MODEL__VALIDATION_DATES / TEST_DATES as they were and retry"
        )
    return record_reference(settings, loaded.model, data.frame, split, version, loaded.run_id)
