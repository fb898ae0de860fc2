"""Comparing what two lake runs wrote (shared by the medallion and Spark cluster tests)."""

from __future__ import annotations

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual


def assert_same_tables(spark, first: dict[str, str], second: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """Every table of two runs holds the same rows, lineage of the run aside; NaN cells counted by hand
    (assertDataFrameEqual takes NaN for equal to anything)."""
    assert set(first) == set(second)
    for table, path in first.items():
        a = spark.read.parquet(path).drop("_run_id", "_ingested_at")
        b = spark.read.parquet(second[table]).drop("_run_id", "_ingested_at")
        assert a.schema == b.schema, table
        assertDataFrameEqual(a, b)
        doubles = [f.name for f in a.schema.fields if f.dataType.typeName() in ("double", "float")]
        if doubles:
            nans = [F.sum(F.isnan(c).cast("int")).alias(c) for c in doubles]
            assert a.select(*nans).first() == b.select(*nans).first(), table
