"""`spanishgas monitor`: read what the platform published, measure drift, decay, data quality and the
plans' business figures, decide whether to retrain, and publish it all (lake, database, Pushgateway)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from spanishgas.errors import service_call
from spanishgas.monitoring.business import BUSINESS_COLUMNS, plan_row
from spanishgas.monitoring.decision import DecisionInputs, RetrainingDecision, decide
from spanishgas.monitoring.drift import drifted_importance_share, feature_drift, prediction_drift
from spanishgas.monitoring.performance import cohort_rows, cohort_tables
from spanishgas.monitoring.publish import NOT_PUBLISHED, database_address, push_metrics, write_database
from spanishgas.monitoring.quality import quality_tables
from spanishgas.monitoring.reference import ReferenceMissing, ReferenceProfile, load_reference
from spanishgas.monitoring.rules import ALERT, load_thresholds

if TYPE_CHECKING:
    from spanishgas.lake_reader import LakeReader
    from spanishgas.model.registry import LoadedModel
    from spanishgas.settings import Settings

MONITORING_LAYER = "monitoring"
SCORE_COLUMNS = [
    "customer_id",
    "churn_probability",
    "risk_tier",
    "action",
    "offer_cost_eur",
    "expected_margin_impact_eur",
    "in_holdout",
]


@dataclass
class MonitorInputs:
    """Everything the monitor reads before it computes anything."""

    champion: LoadedModel
    registered_at: datetime
    profile: ReferenceProfile
    sample: pd.DataFrame
    gold_run_id: str
    snapshot: pd.DataFrame
    labels: pd.DataFrame
    scoring_runs: list[tuple[dict[str, Any], pd.DataFrame]]
    profiles: dict[str, ReferenceProfile | None]
    lake: LakeReader


@dataclass
class MonitorResult:
    """A monitoring run: its tables, the decision, and where they went."""

    run_id: str
    model_version: str
    snapshot_date: date
    tables: dict[str, pd.DataFrame]
    decision: RetrainingDecision
    seconds: float
    finished_at: datetime
    lake_path: str = ""
    database_tables: list[str] = field(default_factory=list)
    push: str = ""

    def summary(self) -> dict[str, Any]:
        """What a person or a DAG needs from the run."""
        drift = self.tables["feature_drift"]
        cohorts = self.tables["performance"]
        return {
            "run_id": self.run_id,
            "model_version": self.model_version,
            "snapshot_date": str(self.snapshot_date),
            "features_warn": sorted(set(drift.loc[drift["level"] == "warn", "feature"])),
            "features_alert": sorted(set(drift.loc[drift["level"] == ALERT, "feature"])),
            "prediction_drift": self.tables["prediction_drift"]
            .iloc[0][["psi", "expected_rate_change", "level"]]
            .to_dict(),
            "matured_cohorts": len(cohorts),
            "decayed_cohorts": int(cohorts["decayed"].sum()) if len(cohorts) else 0,
            "decision": self.decision.as_dict(),
            "seconds_after_inputs_read": self.seconds,
            "lake": self.lake_path,
            "database_tables": self.database_tables,
            "push": self.push,
        }


def _profile_for(settings: Settings, run_id: str, version: str) -> ReferenceProfile | None:
    try:
        return load_reference(settings, run_id, version)[0]
    except ReferenceMissing:
        return None


def read_inputs(settings: Settings) -> MonitorInputs:
    """The champion and its reference, the latest gold snapshot and labels, and every published scoring run."""
    from spanishgas.lake_reader import LakeReader
    from spanishgas.model.registry import configure, load_version
    from spanishgas.retention.job import SCORES_LAYER, SCORES_TABLE, latest_candidates

    champion = load_version(settings, "champion")
    client = configure(settings)
    registered = client.get_model_version(champion.name, champion.version).creation_timestamp
    profile, sample = load_reference(settings, champion.run_id, champion.version)
    gold_run, snapshot = latest_candidates(settings)
    lake = LakeReader.from_settings(settings)
    labels = lake.read_table("gold", gold_run, "churn_training_dataset", ["customer_id", "as_of_date", "label"])
    labels = labels.to_pandas()
    labels["as_of_date"] = pd.to_datetime(labels["as_of_date"]).dt.date
    runs, profiles = [], {champion.version: profile}
    for run_id in lake.published_runs(SCORES_LAYER):
        manifest = lake.manifest(SCORES_LAYER, run_id)
        table = f"{SCORES_TABLE}.parquet"
        columns = [c for c in SCORE_COLUMNS if c in lake.column_names(SCORES_LAYER, run_id, table)]
        runs.append((manifest, lake.read_table(SCORES_LAYER, run_id, table, columns).to_pandas()))
        version = str(manifest.get("model_version", ""))
        if version not in profiles:  # a run by another version is judged against that version's own reference
            other = client.get_model_version(champion.name, version) if version else None
            profiles[version] = _profile_for(settings, str(other.run_id), version) if other else None
    return MonitorInputs(
        champion=champion,
        registered_at=datetime.fromtimestamp(registered / 1000, UTC),
        profile=profile,
        sample=sample,
        gold_run_id=gold_run,
        snapshot=snapshot,
        labels=labels,
        scoring_runs=runs,
        profiles=profiles,
        lake=lake,
    )


def measure(
    settings: Settings, inputs: MonitorInputs, now: datetime
) -> tuple[dict[str, pd.DataFrame], RetrainingDecision]:
    """Every table of a monitoring run and the retraining decision, from inputs already read."""
    monitoring = settings.monitoring
    profile, model = inputs.profile, inputs.champion.model
    drift = feature_drift(
        profile,
        inputs.sample,
        inputs.snapshot,
        load_thresholds(monitoring),
        monitoring.min_rows,
        monitoring.significance,
    )
    probability = model.predict_proba(inputs.snapshot)
    prediction = prediction_drift(
        profile,
        probability,
        model.tiers(probability),
        (monitoring.psi_warn, monitoring.psi_alert),
        (monitoring.expected_rate_warn, monitoring.expected_rate_alert),
    )
    prediction["model_version"] = inputs.champion.version
    cohorts, plans = [], []
    by_date = dict(tuple(inputs.labels.groupby("as_of_date")))
    for manifest, scores in inputs.scoring_runs:
        version = str(manifest.get("model_version", ""))
        cohort = cohort_rows(manifest, scores, inputs.labels, inputs.profiles.get(version), monitoring)
        if cohort is not None:
            cohorts.append(cohort)
        if "action" in scores:
            matured = by_date.get(pd.Timestamp(manifest["feature_snapshot_date"]).date())
            plans.append(plan_row(manifest, scores, matured))
    performance, by_tier = cohort_tables(cohorts)
    runs, quarantine = quality_tables(inputs.lake)
    judged = performance[performance["judged"].astype(bool)]
    alerted = drift.loc[(drift["level"] == ALERT) & drift["judged"], "feature"]
    decision = decide(
        DecisionInputs(
            model_version=inputs.champion.version,
            model_age_days=(now - inputs.registered_at).total_seconds() / 86400,
            drifted_importance_share=drifted_importance_share(profile, drift),
            alert_features=sorted(set(alerted)),
            prediction_drift_level=prediction["level"],
            prediction_rules=prediction["rules"],
            decayed_cohorts=[str(d) for d in judged.loc[judged["decayed"].astype(bool), "snapshot_date"]],
            latest_cohort_decayed=bool(len(judged)) and bool(judged.iloc[-1]["decayed"]),
        ),
        monitoring,
    )
    tables = {
        "feature_drift": drift,
        "prediction_drift": pd.DataFrame([prediction]),
        "performance": performance,
        "performance_by_tier": by_tier,
        "data_quality": runs,
        "quarantine": quarantine,
        "business": pd.DataFrame(plans, columns=BUSINESS_COLUMNS),
        "decision": decision_table(decision),
    }
    return tables, decision


def decision_table(decision: RetrainingDecision) -> pd.DataFrame:
    """The decision as one row (reasons and explanations joined, figures as JSON)."""
    import json

    return pd.DataFrame(
        [
            {
                "model_version": decision.model_version,
                "retrain": decision.retrain,
                "reasons": ",".join(decision.reasons),
                "explanations": json.dumps(decision.explanations),
                "figures": json.dumps(decision.figures, default=str),
            }
        ]
    )


def run_monitor(settings: Settings, push: bool = True, now: datetime | None = None) -> MonitorResult:
    """Read, measure, decide and publish one monitoring run. The decision is returned and stored, never
    turned into a failure: a run that measures drift succeeds."""
    inputs = read_inputs(settings)
    started = time.perf_counter()
    finished = now or datetime.now(UTC)
    tables, decision = measure(settings, inputs, finished)
    seconds = round(time.perf_counter() - started, 3)
    run_id = f"monitoring-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')[:-3]}Z"
    snapshot_date = pd.Timestamp(inputs.snapshot["as_of_date"].max()).date()
    result = MonitorResult(run_id, inputs.champion.version, snapshot_date, tables, decision, seconds, finished)
    manifest = {
        "layer": MONITORING_LAYER,
        "run_id": run_id,
        "model_version": inputs.champion.version,
        "gold_run_id": inputs.gold_run_id,
        "snapshot_date": str(snapshot_date),
        "finished_at": finished.isoformat(),
        "decision": decision.as_dict(),
        "rows": {name: len(frame) for name, frame in tables.items()},
        "seconds_after_inputs_read": seconds,
    }
    result.lake_path = inputs.lake.write_run(MONITORING_LAYER, run_id, tables, manifest)
    tags = {"snapshot_date": pd.Timestamp(snapshot_date), "model_version": inputs.champion.version}
    # The database rows go in before the lake's marker: a lost database leaves the run unpublished.
    with service_call("The monitoring database", database_address(settings), NOT_PUBLISHED):
        result.database_tables = write_database(settings, run_id, finished.isoformat(), tables, tags)
    inputs.lake.publish_run(MONITORING_LAYER, run_id, manifest)
    result.push = push_metrics(settings, result) if push else "not pushed (--no-push)"
    return result


def latest_decision(settings: Settings) -> dict[str, Any]:
    """The decision of the latest published monitoring run (what the retraining DAG reads)."""
    from spanishgas.lake_reader import LakeReader

    lake = LakeReader.from_settings(settings)
    return lake.manifest(MONITORING_LAYER, lake.latest_run(MONITORING_LAYER))["decision"]
