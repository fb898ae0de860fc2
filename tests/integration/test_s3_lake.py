"""The lake on a real S3 server (`weed mini` on loopback, tests/conftest.py): every part of the platform
that reaches the lake through Arrow rather than Hadoop's s3a jars (which cannot be installed here). Bronze's
block tasks read the raw delivery and write customer buckets, silver's bucket tasks read them back and
write the clean readings, the lake reader finds published runs, and the scoring and monitoring jobs publish
their runs; each must write on S3 exactly what it writes in a folder."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pyarrow import fs as pafs
from pyspark.testing import assertDataFrameEqual

from tests.conftest import S3Server

pytestmark = [pytest.mark.integration, pytest.mark.spark]
HOURLY = "consumption_hourly"


def _files(filesystem: pafs.FileSystem, root: str) -> dict[str, pa.Table]:
    """Every Parquet file under ``root`` (relative name -> table)."""
    infos = filesystem.get_file_info(pafs.FileSelector(root, recursive=True))
    return {
        i.path.removeprefix(root).lstrip("/"): pq.read_table(i.path, filesystem=filesystem)
        for i in infos
        if i.is_file and i.path.endswith(".parquet")
    }


def _same_files(local_root: Path, s3: S3Server, key: str) -> int:
    local = _files(pafs.LocalFileSystem(), str(local_root))
    remote = _files(s3.filesystem(), f"{s3.bucket}/{key}")
    assert local and sorted(remote) == sorted(local)
    for name, table in local.items():
        assert remote[name].equals(table), name
    return len(local)


def test_bronze_and_silver_arrow_tasks_write_the_same_buckets_on_s3(  # type: ignore[no-untyped-def]
    spark, small_delivery, s3_server: S3Server, tmp_path: Path
) -> None:
    from spanishgas.etl.bronze import fingerprint_delivery, plan_delivery, write_with_arrow_blocks
    from spanishgas.etl.hourly_buckets import build_hourly
    from spanishgas.settings import EtlSettings

    raw, _ = small_delivery
    # several blocks of the 80 MB hourly file, as bronze reads it at full scale
    etl = EtlSettings(bulk_csv_min_bytes=1024**2, bulk_csv_block_bytes=16 * 1024**2)
    plan = plan_delivery(raw, etl)
    assert HOURLY in plan.bulk_tables
    fingerprint_delivery(plan)
    sources, started = plan.by_table[HOURLY], datetime(2025, 1, 15, tzinfo=UTC)
    s3 = s3_server.settings()

    def bronze(uri: str, settings: Any) -> Any:
        return write_with_arrow_blocks(spark, plan, sources, uri, "bronze-s3-test", started, etl, settings)

    local = bronze(str(tmp_path / "bronze" / HOURLY), None)
    remote = bronze(f"s3a://{s3.bucket}/bronze/{HOURLY}", s3)
    assert remote.seen == local.seen and remote.buckets == local.buckets == etl.customer_buckets
    assert not remote.uncovered and sum(rows for rows, _ in remote.seen.values()) > 1_000_000
    assert _same_files(tmp_path / "bronze" / HOURLY, s3_server, f"bronze/{HOURLY}") >= etl.customer_buckets

    readings = pq.read_table(tmp_path / "bronze" / HOURLY, columns=["customer_id"]).column("customer_id")
    customers = sorted(pc.unique(readings).drop_null().to_pylist())
    known = customers[1:]  # one customer left out: its readings go to quarantine on both stores
    holidays = [date(2024, 1, 1), date(2024, 12, 25)]

    def silver(root: str, settings: Any) -> Any:
        return build_hourly(spark, f"{root}/bronze/{HOURLY}", f"{root}/silver/{HOURLY}", f"{root}/quarantine",
                            known, holidays, [2024], settings)  # fmt: skip

    local_monthly, local_unknown = silver(str(tmp_path), None)
    remote_monthly, remote_unknown = silver(f"s3a://{s3.bucket}", s3)
    assert remote_unknown == local_unknown > 0
    assertDataFrameEqual(remote_monthly, local_monthly)
    assert _same_files(tmp_path / "silver" / HOURLY, s3_server, f"silver/{HOURLY}") >= 1
    assert _same_files(tmp_path / "quarantine", s3_server, "quarantine") >= 1


def _copy_lake_to_s3(local: str, s3: S3Server, key: str) -> str:
    pafs.copy_files(local, f"{s3.bucket}/{key}", source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=s3.filesystem())  # fmt: skip
    return f"s3a://{s3.bucket}/{key}"


def test_scores_and_monitoring_publish_their_runs_on_s3(
    served: dict[str, Any], s3_server: S3Server, tmp_path: Path
) -> None:
    """The served world's lake copied to the bucket: scoring reads gold there and publishes its run there,
    with the same scores as from the folder; monitoring reads those scores and publishes its own run. (These
    jobs write each table of a run as one file, ``<table>.parquet``.)"""
    from spanishgas.lake_reader import LakeReader
    from spanishgas.monitoring.job import MONITORING_LAYER, run_monitor
    from spanishgas.retention.job import SCORES_LAYER, SCORES_TABLE, run_score

    settings = served["settings"]
    lake_uri = _copy_lake_to_s3(str(settings.lake_uri), s3_server, "served/lake")
    monitoring = settings.monitoring.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'monitoring.db'}"})
    on_s3 = settings.model_copy(update={"lake_uri": lake_uri, "s3": s3_server.settings(), "monitoring": monitoring})
    assert not on_s3.lake_is_local

    reader = LakeReader.from_settings(on_s3)
    assert isinstance(reader.fs, pafs.S3FileSystem)
    assert reader.latest_run("gold") == LakeReader(str(settings.lake_uri)).latest_run("gold")

    scored = run_score(on_s3)
    assert scored.lake_path.startswith(f"{s3_server.bucket}/served/lake/{SCORES_LAYER}/")
    assert reader.latest_run(SCORES_LAYER) == scored.run_id
    published = (
        reader.read_table(SCORES_LAYER, scored.run_id, f"{SCORES_TABLE}.parquet").to_pandas().set_index("customer_id")
    )
    batch = served["batch"]
    assert sorted(published.index) == sorted(batch.index)
    assert (published["churn_probability"] - batch.loc[published.index, "churn_probability"]).abs().max() < 1e-12

    monitored = run_monitor(on_s3, push=False)
    assert monitored.lake_path.startswith(f"{s3_server.bucket}/served/lake/{MONITORING_LAYER}/")
    assert reader.latest_run(MONITORING_LAYER) == monitored.run_id
    for table, frame in monitored.tables.items():
        assert reader.read_table(MONITORING_LAYER, monitored.run_id, f"{table}.parquet").num_rows == len(frame), table
    # nothing was written to the folder the lake came from
    assert scored.run_id not in LakeReader(str(settings.lake_uri)).published_runs(SCORES_LAYER)


def test_a_wrong_secret_key_is_refused_by_the_store(s3_server: S3Server) -> None:
    from pydantic import SecretStr

    from spanishgas.lake_reader import LakeReader
    from spanishgas.settings import Settings

    wrong = s3_server.settings().model_copy(update={"secret_access_key": SecretStr("not-the-secret")})
    settings = Settings(profile="stack", s3=wrong, lake_uri=f"s3a://{s3_server.bucket}/served/lake")
    with pytest.raises(OSError, match=r"(?i)signature|access denied|forbidden"):
        LakeReader.from_settings(settings).published_runs("gold")
