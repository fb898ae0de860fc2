"""Silver's bucketed hourly path: buckets, duplicates, and the same rules as the Spark transforms."""

from __future__ import annotations

import datetime as dt
import zlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from spanishgas.calendar import national_holidays
from spanishgas.etl.hourly_buckets import (
    MONTHLY_SCHEMA,
    conform_readings,
    customer_buckets,
    drop_exact_duplicates,
    files_by_bucket,
    monthly_totals,
    split_by_bucket,
)
from spanishgas.etl.silver import conform_consumption, monthly_consumption

READINGS = pa.schema(
    [
        ("customer_id", pa.string()),
        ("timestamp", pa.timestamp("us")),
        ("consumption_elec_kwh", pa.float64()),
        ("consumption_gas_m3", pa.float64()),
    ]
)
SPARK_READINGS = "customer_id string, timestamp timestamp_ntz, consumption_elec_kwh double, consumption_gas_m3 double"


@pytest.mark.unit
def test_a_customer_always_lands_in_the_same_bucket() -> None:
    ids = pa.array(["C00001", "C00002", None, "C00001"])
    out = customer_buckets(ids, 16).to_pylist()
    assert out == [zlib.crc32(b"C00001") % 16, zlib.crc32(b"C00002") % 16, 0, zlib.crc32(b"C00001") % 16]


@pytest.mark.unit
def test_splitting_by_bucket_keeps_every_row_once() -> None:
    ids = [f"C{n:05d}" for n in range(200)] * 3
    table = pa.table({"customer_id": ids, "n": list(range(len(ids)))})
    parts = split_by_bucket(table, 8)
    assert sorted(n for part in parts.values() for n in part.column("n").to_pylist()) == list(range(len(ids)))
    for bucket, part in parts.items():
        assert set(customer_buckets(part.column("customer_id"), 8).to_pylist()) == {bucket}
    names = ["part-000-00001-b003.zstd.parquet", "part-000-00002-b003.zstd.parquet", "part-001-00000-b010.zstd.parquet"]
    assert files_by_bucket([*names, "_SUCCESS"]) == {3: names[:2], 10: names[2:]}


@pytest.mark.unit
def test_only_exact_duplicates_are_dropped() -> None:
    at = dt.datetime(2024, 10, 27, 2)
    rows = [
        ("C2", at, 1.0, 0.0),
        ("C1", at, 3.0, 1.0),  # the repeated October hour: another reading, kept
        ("C1", at, 2.0, 1.0),
        ("C1", at, float("nan"), 1.0),
        ("C1", at, 2.0, 1.0),  # exact duplicate of a reading two rows up: dropped
        ("C1", at, float("nan"), 1.0),  # NaN equals NaN for duplicates, as in Spark
    ]
    table = pa.Table.from_pylist([dict(zip(READINGS.names, r, strict=True)) for r in rows], schema=READINGS)
    out = drop_exact_duplicates(table).to_pylist()
    assert [r["customer_id"] for r in out] == ["C1", "C1", "C1", "C2"]  # customer, then time
    values = sorted(str(r["consumption_elec_kwh"]) for r in out[:3])
    assert values == ["2.0", "3.0", "nan"]


@pytest.mark.unit
def test_duplicates_are_dropped_when_the_readings_span_more_than_68_years() -> None:
    # too wide a time range to pack customer and second into one number: the two-column sort is used
    rows = [("C1", dt.datetime(1950, 1, 1), 1.0, 0.0), ("C1", dt.datetime(2024, 1, 1), 1.0, 0.0)] * 2
    table = pa.Table.from_pylist([dict(zip(READINGS.names, r, strict=True)) for r in rows], schema=READINGS)
    out = drop_exact_duplicates(table).to_pylist()
    assert [r["timestamp"].year for r in out] == [1950, 2024]


@pytest.mark.unit
@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["C1", "C2", "C10", "C3"]),
            st.integers(min_value=0, max_value=5),
            st.sampled_from([0.0, 1.0, -1.0]),
            st.sampled_from([0.0, 2.0]),
        ),
        min_size=0,
        max_size=60,
    )
)
def test_duplicates_are_dropped_as_a_set_would(rows: list[tuple[str, int, float, float]]) -> None:
    start = dt.datetime(2024, 1, 1)
    readings = [(c, start + dt.timedelta(hours=h), e, g) for c, h, e, g in rows]
    table = pa.Table.from_pylist([dict(zip(READINGS.names, r, strict=True)) for r in readings], schema=READINGS)
    out = drop_exact_duplicates(table).to_pylist()
    assert sorted(tuple(r.values()) for r in out) == sorted(set(readings))
    order = [(r["customer_id"], r["timestamp"]) for r in out]
    assert order == sorted(order)


ROWS = [
    ("C1", dt.datetime(2024, 1, 31, 23), 2.0, 0.5),  # Wednesday 23:00: standard, January
    ("C1", dt.datetime(2024, 2, 1, 0), 1.0, 0.0),  # Thursday 00:00 local, still January in UTC
    ("C1", dt.datetime(2024, 2, 1, 10), 3.0, -0.2),  # peak; negative gas set to 0 and counted
    ("C1", dt.datetime(2024, 3, 28, 7), 1.0, 0.0),  # off-peak
    ("C1", dt.datetime(2024, 3, 28, 9), 1.0, 0.0),  # standard
    ("C1", dt.datetime(2024, 3, 28, 19), 1.0, 0.0),  # peak
    ("C2", dt.datetime(2024, 3, 29, 12), 1.0, 0.0),  # Good Friday: off-peak
    ("C2", dt.datetime(2024, 3, 31, 2), -0.5, -0.01),  # 02:00 does not exist locally
    ("C2", dt.datetime(2024, 3, 31, 2, 30), 0.5, 0.0),  # half past, in the missing hour: 01:30 UTC
    ("C2", dt.datetime(2024, 3, 31, 3), 0.5, 0.01),
    ("C3", dt.datetime(2024, 5, 6, 9), float("nan"), 0.0),  # a NaN reading stays NaN, as in Spark
    ("C3", dt.datetime(2024, 5, 6, 10), 1.0, 0.0),  # and the month's highest hour is NaN, as in Spark
    ("C2", dt.datetime(2024, 10, 27, 2), 2.0, 1.0),  # the repeated hour of October
    ("C2", dt.datetime(2024, 10, 27, 2), 2.5, 1.0),
    ("C2", dt.datetime(2024, 10, 28, 12), 1.0, 0.0),  # Monday peak
    ("C2", dt.datetime(2024, 12, 31, 23), 0.25, 0.1),  # New Year's Eve, 22:00 in UTC
]


@pytest.mark.spark
def test_readings_are_conformed_and_totalled_as_by_the_spark_transforms(spark, tmp_path) -> None:  # type: ignore[no-untyped-def]
    holidays = sorted(national_holidays([2024]))
    table = pa.Table.from_pylist([dict(zip(READINGS.names, r, strict=True)) for r in ROWS], schema=READINGS)
    expected = conform_consumption(spark.createDataFrame(ROWS, SPARK_READINGS), holidays, [2024])
    clean = conform_readings(table, holidays, [2024])
    # through a Parquet file, as silver writes it: Spark's types follow from Arrow's, compared, not imposed
    pq.write_table(clean, tmp_path / "clean.parquet", store_schema=False)
    actual = spark.read.parquet(str(tmp_path / "clean.parquet"))
    assert [(f.name, f.dataType) for f in actual.schema] == [(f.name, f.dataType) for f in expected.schema]
    assertDataFrameEqual(actual, expected)
    # assertDataFrameEqual takes NaN for equal to any number (abs(NaN - x) > tol is False): NaN by hand
    nan_rows = [(r["customer_id"], str(r["elec_kwh"])) for r in actual.filter(F.isnan("elec_kwh")).collect()]
    assert nan_rows == [(r["customer_id"], str(r["elec_kwh"])) for r in expected.filter(F.isnan("elec_kwh")).collect()]
    assert nan_rows == [("C3", "nan")]
    monthly = spark.createDataFrame(monthly_totals(clean))
    expected_monthly = monthly_consumption(expected)
    assert [(f.name, f.dataType) for f in monthly.schema] == [(f.name, f.dataType) for f in expected_monthly.schema]
    assert monthly.schema.simpleString() == spark.createDataFrame([], MONTHLY_SCHEMA).schema.simpleString()
    assertDataFrameEqual(monthly, expected_monthly)
    doubles = [f.name for f in expected_monthly.schema if f.dataType.simpleString() == "double"]

    def nan_cells(df):  # type: ignore[no-untyped-def]
        return sorted((r["customer_id"], str(r["month"]), c) for r in df.collect() for c in doubles if r[c] != r[c])

    assert nan_cells(monthly) == nan_cells(expected_monthly) != []
