"""The Assets that chain the DAGs: each is updated by the task that publishes it, and schedules the next
DAG (landing -> medallion -> features -> scoring -> monitoring -> retraining)."""

from __future__ import annotations

from airflow.sdk import Asset

BRONZE = Asset("spanishgas-lake-bronze", uri="spanishgas://lake/bronze")
SILVER = Asset("spanishgas-lake-silver", uri="spanishgas://lake/silver")
GOLD = Asset("spanishgas-lake-gold", uri="spanishgas://lake/gold")
ONLINE_FEATURES = Asset("spanishgas-online-features", uri="spanishgas://feature-store/online")
# Updated only when a new champion is promoted; the event carries its version and metrics.
CHAMPION = Asset("spanishgas-champion-model", uri="spanishgas://registry/champion")
SCORES = Asset("spanishgas-scores", uri="spanishgas://lake/scores")
# Updated when the monitor asks for a retrain; the event carries the reasons.
DRIFT = Asset("spanishgas-retrain-requested", uri="spanishgas://monitoring/retrain")
