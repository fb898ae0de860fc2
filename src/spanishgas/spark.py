"""One way to get a Spark session, shared by the jobs, the CLI and the tests."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from spanishgas.settings import Settings, get_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def spark_conf(settings: Settings) -> dict[str, str]:
    """The Spark configuration the platform runs with, derived from settings."""
    sp = settings.spark
    conf = {
        "spark.driver.memory": sp.driver_memory,
        "spark.sql.shuffle.partitions": str(sp.effective_shuffle_partitions()),
        "spark.ui.enabled": str(sp.ui_enabled).lower(),
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.host": sp.driver_host or sp.local_ip,
        "spark.driver.bindAddress": sp.local_ip,
        # Timestamps are stored in UTC; local Spanish time is derived explicitly where needed.
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.parquet.compression.codec": "zstd",
        # INT96 (Spark's default) is deprecated and slower to write; every reader here takes microseconds
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.adaptive.enabled": "true",
    }
    if sp.jars_packages:
        conf["spark.jars.packages"] = sp.jars_packages
    if not settings.lake_is_local:
        s3 = settings.s3
        conf.update(
            {
                "spark.hadoop.fs.s3a.endpoint": s3.endpoint_url,
                "spark.hadoop.fs.s3a.access.key": s3.access_key_id,
                "spark.hadoop.fs.s3a.secret.key": s3.secret_access_key.get_secret_value(),
                "spark.hadoop.fs.s3a.path.style.access": "true",
                "spark.hadoop.fs.s3a.connection.ssl.enabled": str(s3.endpoint_url.startswith("https")).lower(),
            }
        )
    conf.update(sp.extra_conf)
    return conf


def get_spark(app_name: str = "spanishgas", settings: Settings | None = None) -> SparkSession:
    """Return the active Spark session or build one from settings.

    ``SPARK_LOCAL_IP`` is set before the JVM starts so Spark binds to loopback even on hosts whose name
    resolves to an unreachable address.
    """
    from pyspark.sql import SparkSession

    settings = settings or get_settings()
    os.environ.setdefault("SPARK_LOCAL_IP", settings.spark.local_ip)
    # Python workers must run the same interpreter (and so see the same packages) as the driver.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(app_name)
    # Under spark-submit the master is the submitter's (--master, the Airflow connection): the settings'
    # master applies only to sessions the platform starts itself.
    if not os.environ.get("PYSPARK_GATEWAY_PORT"):
        builder = builder.master(settings.spark.master)
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
