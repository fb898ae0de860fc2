"""Deliveries in the landing folder, the landing trigger, and the helpers the DAG tasks use."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from spanishgas.contracts import RAW_FILES
from spanishgas.orchestration.landing import claim, is_complete, landing_paths, missing_files, next_delivery
from spanishgas.orchestration.tasks import plain, retrain_request, spark_connection, spark_submit_conf
from spanishgas.settings import Settings, SparkSettings

pytestmark = pytest.mark.unit
MARKER = "_DELIVERY_COMPLETE"


def _delivery(folder: Path, marker: bool = True, skip: str | None = None) -> Path:
    folder.mkdir(parents=True)
    for contract in RAW_FILES:
        if contract.pattern != skip:
            (folder / contract.pattern.replace("*", "2024")).write_text("x\n")
    if marker:
        (folder / MARKER).touch()
    return folder


def test_a_delivery_is_complete_with_every_file_and_the_marker(tmp_path: Path) -> None:
    complete = _delivery(tmp_path / "a")
    assert missing_files(complete) == [] and is_complete(complete, MARKER)
    no_marker = _delivery(tmp_path / "b", marker=False)
    assert not is_complete(no_marker, MARKER)
    short = _delivery(tmp_path / "c", skip="price_history.csv")
    assert missing_files(short) == ["price_history.csv"] and not is_complete(short, MARKER)
    assert len(missing_files(tmp_path / "nowhere")) == len(RAW_FILES)


def test_next_delivery_is_the_first_complete_unclaimed_one(tmp_path: Path) -> None:
    landing, claims = tmp_path / "landing", tmp_path / "state" / "claims.json"
    assert next_delivery(landing, MARKER, claims) is None  # no landing folder yet
    _delivery(landing / "2024-10", skip="churn_label.csv")
    november = _delivery(landing / "2024-11")
    december = _delivery(landing / "2024-12")
    assert next_delivery(landing, MARKER, claims) == november.resolve()
    claim(claims, november, datetime(2026, 12, 2, tzinfo=UTC))
    assert next_delivery(landing, MARKER, claims) == december.resolve()
    claim(claims, december)
    assert next_delivery(landing, MARKER, claims) is None
    recorded = json.loads(claims.read_text())
    assert recorded[str(november.resolve())] == "2026-12-02T00:00:00+00:00" and len(recorded) == 2
    assert not list(claims.parent.glob("*.tmp"))  # written whole, then renamed


def test_relative_landing_settings_are_read_from_the_platform_folder(tmp_path: Path) -> None:
    landing, claims = landing_paths(Settings(data_root=Path("data")), tmp_path)
    assert landing == tmp_path / "data" / "landing"
    assert claims == tmp_path / "data" / "orchestration" / "claimed_deliveries.json"
    absolute = Settings(data_root=tmp_path / "elsewhere")
    assert landing_paths(absolute, Path("/ignored"))[0] == tmp_path / "elsewhere" / "landing"


def test_the_trigger_fires_once_a_delivery_is_complete(tmp_path: Path) -> None:
    from spanishgas.orchestration.sensors import DeliveryTrigger

    landing, claims = tmp_path / "landing", tmp_path / "claims.json"
    trigger = DeliveryTrigger(str(landing), MARKER, str(claims), poke_interval=0.05)
    classpath, kwargs = trigger.serialize()
    assert classpath == "spanishgas.orchestration.sensors.DeliveryTrigger"
    assert DeliveryTrigger(**kwargs).serialize() == (classpath, kwargs)  # the triggerer rebuilds it

    async def wait_then_deliver() -> dict[str, str]:
        events = trigger.run()
        waiting = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(0.3)
        assert not waiting.done()  # nothing complete yet: still waiting
        _delivery(landing / "2024-12")
        event = await asyncio.wait_for(waiting, timeout=5)
        return event.payload

    assert asyncio.run(wait_then_deliver()) == {"delivery": str((landing / "2024-12").resolve())}


def test_the_spark_connection_submits_to_the_settings_master() -> None:
    assert json.loads(spark_connection(Settings())) == {"conn_type": "spark", "host": "local[*]"}
    cluster = Settings(spark=SparkSettings(master="spark://spark-master:7077"))
    assert json.loads(spark_connection(cluster))["host"] == "spark://spark-master:7077"
    conf = spark_submit_conf(Settings())
    assert "spark.driver.memory" not in conf  # spark-submit's --driver-memory sets it before the JVM starts
    assert conf["spark.sql.session.timeZone"] == "UTC"


def test_task_results_are_plain_json_and_a_retrain_request_carries_the_reasons() -> None:
    mixed = {"n": np.int64(3), "x": np.float64(0.5), "d": date(2024, 8, 1)}
    assert plain(mixed) == {"n": 3, "x": 0.5, "d": "2024-08-01"}
    summary = {
        "run_id": "monitoring-1",
        "model_version": "4",
        "snapshot_date": "2024-12-01",
        "decision": {"retrain": True, "reasons": ["model_age"], "explanations": ["the champion is 40 days old"]},
    }
    assert retrain_request(summary) == {
        "monitoring_run_id": "monitoring-1",
        "model_version": "4",
        "snapshot_date": "2024-12-01",
        "reasons": ["model_age"],
        "explanations": ["the champion is 40 days old"],
    }
