"""The weekly retention jobs: fit and register segments, then score, explain, segment and recommend every
active customer, and publish the table (lake Parquet; also Postgres in the stack profile)."""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import mlflow
import mlflow.pyfunc
import pandas as pd

from spanishgas.retention.segments import SegmentModel, fit_segments

if TYPE_CHECKING:
    from spanishgas.settings import Settings

SEGMENT_MODEL = "spanishgas-segments"
SCORES_LAYER = "scores"
SCORES_TABLE = "customer_scores"


class SegmentPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """The registered segment model: segment id and name per row."""

    def __init__(self, segments: SegmentModel) -> None:
        self.segments = segments

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Assign segments."""
        ids = self.segments.assign(model_input)
        return pd.DataFrame({"segment_id": ids, "segment_name": [self.segments.names[int(i)] for i in ids]})


def latest_candidates(settings: Settings) -> tuple[str, pd.DataFrame]:
    """Gold's ``recommendation_candidates`` of the latest published run: every active customer's latest
    features with margin fields."""
    from spanishgas.lake_reader import LakeReader

    lake = LakeReader.from_settings(settings)
    run_id = lake.latest_run("gold")
    return run_id, lake.read_table("gold", run_id, "recommendation_candidates").to_pandas()


def run_segment(settings: Settings) -> dict[str, Any]:
    """Fit segments on the latest snapshot, log and register them in MLflow (alias ``champion``: an
    unsupervised model has no forward test to gate on; stability across reruns is tested instead)."""
    from spanishgas.model.registry import configure, experiment_id

    gold_run, frame = latest_candidates(settings)
    segments = fit_segments(frame, settings.seed)
    client = configure(settings)
    experiment = experiment_id(settings, client, "spanishgas-segments")
    example = frame[segments.features].astype("float64").head(5)
    with mlflow.start_run(experiment_id=experiment, run_name="segments") as run:
        mlflow.log_params(
            {
                "k": len(segments.names),
                "features": ",".join(segments.features),
                "gold_run_id": gold_run,
                "criterion": "silhouette",
                "seed": settings.seed,
            }
        )
        mlflow.log_metrics({f"silhouette_k{k}": v for k, v in segments.silhouettes.items()})
        mlflow.log_text(segments.profiles.to_markdown(floatfmt=".2f"), "segment_profiles.md")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=SegmentPyfunc(segments),
            input_example=example,
            registered_model_name=SEGMENT_MODEL,
        )
    version = str(info.registered_model_version)
    client.set_registered_model_alias(SEGMENT_MODEL, "champion", version)
    return {
        "version": version,
        "run_id": run.info.run_id,
        "gold_run_id": gold_run,
        "k": len(segments.names),
        "silhouettes": segments.silhouettes,
        "segments": {int(k): v for k, v in segments.names.items()},
    }


def load_segments(settings: Settings) -> SegmentModel:
    """The registered segment model (alias champion)."""
    from spanishgas.model.registry import configure

    configure(settings)
    return mlflow.pyfunc.load_model(f"models:/{SEGMENT_MODEL}@champion").unwrap_python_model().segments


@dataclass
class ScoreResult:
    """A published scoring run."""

    run_id: str
    rows: int
    summary: dict[str, Any]
    seconds_after_load: float
    lake_path: str
    postgres_table: str | None
    table: pd.DataFrame


def run_score(settings: Settings, budget_eur: float | None = None) -> ScoreResult:
    """Score every active customer with the champion and publish the table."""
    from spanishgas.model.registry import RetiredFeatures, load_version, retired_features
    from spanishgas.retention.offers import load_policy
    from spanishgas.retention.scoring import recommend, score, score_table, segment

    champion = load_version(settings, "champion")
    gold_run, frame = latest_candidates(settings)
    retired = retired_features(champion.model, frame.columns)
    if retired:
        raise RetiredFeatures(
            f"champion v{champion.version} needs features gold no longer builds ({', '.join(retired)}): "
            "train a model on the current features and promote it (`spanishgas train`, then `spanishgas promote "
            '--reason "..."`: the gate cannot compare with this champion)'
        )
    segments = load_segments(settings)
    policy = load_policy()
    started = time.perf_counter()
    scored = pd.concat([frame, score(champion.model, frame), segment(segments, frame)], axis=1)
    recommendations, summary = recommend(scored, policy, budget_eur)
    seconds = time.perf_counter() - started
    run_id = f"scores-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')[:-3]}Z"
    meta = {
        "model_name": champion.name,
        "model_version": champion.version,
        "feature_snapshot_date": str(pd.to_datetime(frame["as_of_date"]).max().date()),
        "gold_run_id": gold_run,
        "run_id": run_id,
    }
    table = score_table(recommendations, meta)
    path = _publish(settings, run_id, table, {**meta, "summary": summary, "rows": len(table)})
    pg_table = _to_postgres(settings, table) if settings.profile == "stack" else None
    return ScoreResult(run_id, len(table), summary, round(seconds, 2), path, pg_table, table)


def _publish(settings: Settings, run_id: str, table: pd.DataFrame, manifest: dict[str, Any]) -> str:
    """Write the run's Parquet, then its publication marker (readers only see published runs)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from spanishgas.lake_reader import LakeReader

    lake = LakeReader.from_settings(settings)
    folder = lake.path(SCORES_LAYER, "runs", run_id)
    lake.fs.create_dir(folder, recursive=True)
    path = f"{folder}/{SCORES_TABLE}.parquet"
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), path, filesystem=lake.fs)
    lake.fs.create_dir(lake.path(SCORES_LAYER, "_published"), recursive=True)
    with lake.fs.open_output_stream(lake.path(SCORES_LAYER, "_published", f"{run_id}.json")) as out:
        out.write(json.dumps(manifest, indent=2, default=str).encode())
    return path


def _to_postgres(settings: Settings, table: pd.DataFrame) -> str:
    """Replace the ``customer_scores`` table of the platform database in one transaction."""
    from spanishgas.postgres import create_database, replace_table

    database = settings.postgres.database
    create_database(settings, database)
    types = {"int64": "bigint", "int32": "integer", "float64": "double precision", "bool": "boolean"}
    columns = [(str(c), types.get(str(t), "text")) for c, t in table.dtypes.items()]
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    replace_table(settings, database, SCORES_TABLE, columns, buffer)
    return f"postgres:{database}.{SCORES_TABLE}"
