"""The weekly retention jobs: fit and register segments, then score, explain, segment and recommend every
active customer, and publish the table (lake Parquet; also Postgres in the stack profile) with the
model's expected churn beside the observed one over the matured months."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import mlflow
import mlflow.pyfunc
import pandas as pd

from spanishgas.lake import LakeError
from spanishgas.retention.history import HISTORY_TABLE, churn_history
from spanishgas.retention.scoring import holdout_mask
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


def candidates_at(settings: Settings, as_of: date) -> tuple[str, pd.DataFrame]:
    """Every customer supplied on an earlier as-of date of the latest gold run, with the value fields
    offers need (as gold adds them to the latest snapshot): what a scoring run on that date saw."""
    import pyarrow.dataset as ds

    from spanishgas.lake_reader import LakeReader
    from spanishgas.retention.scoring import with_value_fields

    lake = LakeReader.from_settings(settings)
    run_id = lake.latest_run("gold")
    rows = lake.read_table("gold", run_id, "customer_features_asof", filter=ds.field("as_of_date") == as_of)
    if rows.num_rows == 0:
        dates = lake.manifest("gold", run_id).get("as_of_dates", [])
        raise LakeError(f"gold run {run_id} has no customers on {as_of}; its as-of dates: {', '.join(dates)}")
    return run_id, with_value_fields(rows.to_pandas())


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


def run_score(settings: Settings, budget_eur: float | None = None, as_of: date | None = None) -> ScoreResult:
    """Score every active customer with the champion and publish the table; with ``as_of``, the customers
    of that earlier snapshot instead of the latest (a backfill: monitoring judges such runs once their
    labels mature)."""
    from spanishgas.progress import steps

    with steps("scoring", total=4) as step:
        return _score_and_publish(settings, budget_eur, as_of, step)


def _score_and_publish(settings: Settings, budget_eur: float | None, as_of: date | None, step: Any) -> ScoreResult:
    """:func:`run_score`'s steps, each reported to ``step``."""
    from spanishgas.model.registry import RetiredFeatures, load_version, retired_features
    from spanishgas.retention.offers import load_policy
    from spanishgas.retention.scoring import recommend, score, score_table, segment

    champion = load_version(settings, "champion")
    gold_run, frame = latest_candidates(settings) if as_of is None else candidates_at(settings, as_of)
    step(f"champion v{champion.version}, {len(frame):,} customers of gold run {gold_run}")
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
    lang = settings.retention.language
    scored = pd.concat([frame, score(champion.model, frame, lang=lang), segment(segments, frame)], axis=1)
    step("scored, explained and segmented")
    recommendations, summary = recommend(scored, policy, budget_eur, lang)
    step(f"planned: {summary['plan']['customers_offered']:,} offers")
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
    table["in_holdout"] = holdout_mask(table["customer_id"], table["action"], settings.retention.holdout_share, run_id)
    history = churn_history(settings, gold_run, champion.model)
    from spanishgas.lake_reader import LakeReader

    manifest = {**meta, "summary": summary, "rows": len(table), "holdout_share": settings.retention.holdout_share}
    manifest["tables"] = [SCORES_TABLE, HISTORY_TABLE]
    tables = {SCORES_TABLE: table, HISTORY_TABLE: history}
    lake = LakeReader.from_settings(settings)
    folder = lake.write_run(SCORES_LAYER, run_id, tables, manifest)
    # Postgres is swapped before the lake's marker: a failed swap leaves both on the previous run.
    pg_table = _to_postgres(settings, table) if settings.profile == "stack" else None
    lake.publish_run(SCORES_LAYER, run_id, manifest)
    path = f"{folder}/{SCORES_TABLE}.parquet"
    step(f"published {run_id}")
    return ScoreResult(run_id, len(table), summary, round(seconds, 2), path, pg_table, table)


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
