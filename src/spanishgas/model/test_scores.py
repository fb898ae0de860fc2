"""The forward test rows' scores, kept with each model version: what the version scored on its own test
rows at training time, and what the promotion gate scored for challenger and champion on the same rows.
The analyst app draws its curves from these small tables instead of rebuilding the test period through
the feature store (a minute at full scale)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

FOLDER = "evaluation"
TEST_SCORES = f"{FOLDER}/test_scores.parquet"  # the version on its own forward test rows
GATE_SCORES = f"{FOLDER}/gate_scores.parquet"  # challenger and champion on the gate's rows
PROBABILITY = "probability"
KEYS = ["customer_id", "as_of_date", "label"]


def version_column(version: str) -> str:
    """The gate table's column for a model version's probabilities."""
    return f"v{version}"


def scores_frame(rows: pd.DataFrame, scores: dict[str, np.ndarray]) -> pd.DataFrame:
    """Labelled rows' keys beside each model's probabilities (one column per model)."""
    frame = rows[KEYS].reset_index(drop=True).copy()
    frame["label"] = frame["label"].astype("int8")
    for column, probabilities in scores.items():
        frame[column] = np.asarray(probabilities, dtype="float64")  # float32 would merge close scores into ties
    return frame


def log_scores(client: MlflowClient, run_id: str, frame: pd.DataFrame, artifact: str) -> None:
    """Store a scores table as an artifact of ``run_id`` (replacing one of the same name)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact).name
        frame.to_parquet(path, index=False)
        client.log_artifact(run_id, str(path), str(Path(artifact).parent))


def read_scores(run_id: str, artifact: str) -> pd.DataFrame | None:
    """A scores table of a run, or None when the run has none (versions trained before they were kept)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact, dst_path=tmp)
            return pd.read_parquet(local)
    except (MlflowException, OSError):
        return None
