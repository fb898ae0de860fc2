import os

import pytest

from spanishgas.settings import S3Settings, Settings, SparkSettings
from spanishgas.spark import spark_conf


@pytest.mark.unit
def test_conf_is_sized_for_the_machine_and_quiet() -> None:
    conf = spark_conf(Settings(spark=SparkSettings(shuffle_partitions=0)))
    assert int(conf["spark.sql.shuffle.partitions"]) == 4 * (os.cpu_count() or 2)
    assert conf["spark.ui.enabled"] == "false"
    assert conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert "spark.hadoop.fs.s3a.endpoint" not in conf


@pytest.mark.unit
def test_s3a_lake_configures_the_object_store() -> None:
    s = Settings(
        profile="stack",
        s3=S3Settings(endpoint_url="http://127.0.0.1:8333"),
        spark=SparkSettings(jars_packages="org.apache.hadoop:hadoop-aws:3.4.1"),
    )
    conf = spark_conf(s)
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:8333"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.jars.packages"] == "org.apache.hadoop:hadoop-aws:3.4.1"


@pytest.mark.spark
def test_shared_session_runs_on_loopback(spark) -> None:  # type: ignore[no-untyped-def]
    assert os.environ["SPARK_LOCAL_IP"] == "127.0.0.1"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "4"
    assert spark.range(1000).selectExpr("sum(id) AS s").first()["s"] == 499500
