"""Bronze: contract enforcement row by row, and whole-file problems that stop a run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

from spanishgas.contracts import CHURN_LABEL, CONSUMPTION_HOURLY, COSTS_BY_PROVINCE
from spanishgas.etl.bronze import DeliveryError, RawFile, check_header, conform_to_contract, find_raw_files, fingerprint


@pytest.mark.spark
def test_rows_are_typed_or_quarantined_with_the_first_reason(spark) -> None:  # type: ignore[no-untyped-def]
    raw = spark.createDataFrame(
        [
            ("C00001", "2024-03-31 02:00:00", "0.5", "0", None),
            ("C00002", "2024-03-31 03:00:00", "n/a", "0", None),
            (None, "2024-03-31 03:00:00", "0.1", "0", None),  # the CSV reader turns empty cells into nulls
            ("C00003", "2024-03-31", "0.1", "0", None),
            ("C00004", "2024-03-31 04:00:00", "0.1", "0", "extra"),
            ("C00005", "2024-03-31 05:00:00", "-0.9", None, None),
        ],
        "customer_id string, timestamp string, consumption_elec_kwh string, consumption_gas_m3 string, "
        "_extra_field string",
    )
    out = conform_to_contract(raw, CONSUMPTION_HOURLY)
    expected = spark.createDataFrame(
        [
            ("C00001", dt.datetime(2024, 3, 31, 2), 0.5, 0.0, None, None),
            (
                "C00002",
                dt.datetime(2024, 3, 31, 3),
                None,
                0.0,
                "bad float in consumption_elec_kwh",
                "C00002,2024-03-31 03:00:00,n/a,0",
            ),
            (None, dt.datetime(2024, 3, 31, 3), 0.1, 0.0, "missing customer_id", ",2024-03-31 03:00:00,0.1,0"),
            ("C00003", None, 0.1, 0.0, "bad timestamp in timestamp", "C00003,2024-03-31,0.1,0"),
            (
                "C00004",
                dt.datetime(2024, 3, 31, 4),
                0.1,
                0.0,
                "too many fields",
                "C00004,2024-03-31 04:00:00,0.1,0,extra",
            ),
            (
                "C00005",
                dt.datetime(2024, 3, 31, 5),
                -0.9,
                None,
                "missing consumption_gas_m3",
                "C00005,2024-03-31 05:00:00,-0.9,",
            ),
        ],
        "customer_id string, timestamp timestamp_ntz, consumption_elec_kwh double, consumption_gas_m3 double, "
        "_quarantine_reason string, _raw string",
    )
    assertDataFrameEqual(out, expected)


@pytest.mark.spark
def test_ranges_and_months_follow_the_contract(spark) -> None:  # type: ignore[no-untyped-def]
    raw = spark.createDataFrame(
        [
            ("2024-01", "28", "0.07", "0.7", "0.015"),
            ("2024-13", "28", "0.07", "0.7", "0.015"),
            ("2024-02", "99", "0.07", "0.7", "0.015"),
            ("2024-02", "8", "-1", "0.7", "0.015"),
        ],
        "month string, province string, elec_var_cost_eur_kwh string, gas_var_cost_eur_m3 string, "
        "peaje_elec_eur_kwh string",
    )
    out = conform_to_contract(raw, COSTS_BY_PROVINCE).select("month", "_quarantine_reason")
    expected = spark.createDataFrame(
        [
            (dt.date(2024, 1, 1), None),
            (None, "bad month in month"),
            (dt.date(2024, 2, 1), "province above 52"),
            (dt.date(2024, 2, 1), "elec_var_cost_eur_kwh below 0"),
        ],
        "month date, _quarantine_reason string",
    )
    assertDataFrameEqual(out, expected)


@pytest.mark.unit
def test_missing_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "churn_label.csv").write_text("customer_id,churn\nC00001,0\n")
    with pytest.raises(DeliveryError, match=r"missing file.*customer_attributes\.csv"):
        find_raw_files(tmp_path)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("customer_id,timestamp,consumption_elec_kwh,consumption_gas_m3\n", "header but no rows"),
        (
            "customer_id,ts,consumption_elec_kwh,consumption_gas_m3\nC00001,x,1,1\n",
            "missing column.s. timestamp; unexpected column.s.: ts",
        ),
    ],
)
def test_unusable_files_fail_with_the_file_and_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "consumption_hourly_2024.csv"
    path.write_text(content)
    raw = RawFile(path=path, contract=CONSUMPTION_HOURLY)
    fingerprint(raw)
    with pytest.raises(DeliveryError, match=f"consumption_hourly_2024.csv.*{message}"):
        check_header(raw)


@pytest.mark.unit
def test_fingerprint_counts_data_rows_independently_of_spark(tmp_path: Path) -> None:
    path = tmp_path / "consumption_hourly_2024.csv"
    path.write_bytes(b"customer_id,timestamp,consumption_elec_kwh,consumption_gas_m3\na,b,1,2\n\nc,d,3,4")
    raw = RawFile(path=path, contract=CONSUMPTION_HOURLY)
    fingerprint(raw)
    assert raw.rows_in == 2
    assert len(raw.sha256) == 64 and raw.size == path.stat().st_size


@pytest.mark.unit
@pytest.mark.parametrize(
    ("body", "rows"),
    [
        (b"a,b,1,2\n\n\n\nc,d,3,4\n", 2),  # a run of blank lines: each one counts
        (b"a,b,1,2\r\n\r\n\r\nc,d,3,4", 2),  # the same with CRLF, no final newline
        (b"a,b,1,2\n\nc,d,3,4\n\n", 2),
        (b"a,b,1,2\nc,d,3,4", 2),
        (b"a,b,1,2\n   \n\t \r\nc,d,3,4\n", 2),  # lines of nothing but whitespace: Spark skips them too
        (b"   \na,b,1,2\nc,d,3,4\n  ", 2),  # first and last (no terminator)
        (b"a,b,1,2\n \n \n \nc,d,3,4\n", 2),
        (b"a,b,1,2\n\x0c\x00\nc,d,3,4\n", 2),  # anything Java's trim() removes
        (b"a,b,1,2\n" + b"y" * 40 + b"\nc,d,3,4", 3),  # a line longer than a read block is one row
    ],
)
@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1 << 24])  # blank lines split across read blocks
def test_fingerprint_counts_rows_around_blank_lines_in_any_block_size(
    tmp_path: Path, body: bytes, rows: int, chunk: int
) -> None:
    path = tmp_path / "consumption_hourly_2024.csv"
    path.write_bytes(b"customer_id,timestamp,consumption_elec_kwh,consumption_gas_m3\n" + body)
    raw = RawFile(path=path, contract=CONSUMPTION_HOURLY)
    fingerprint(raw, chunk=chunk)
    assert raw.rows_in == rows


@pytest.mark.unit
def test_a_renamed_optional_column_fails_naming_both_names(tmp_path: Path) -> None:
    optional = next(c for c in CHURN_LABEL.column_names if c not in CHURN_LABEL.required_columns)
    header = [("label_day" if c == optional else c) for c in CHURN_LABEL.column_names]
    path = tmp_path / "churn_label.csv"
    path.write_text(",".join(header) + "\n" + ",".join("x" for _ in header) + "\n")
    raw = RawFile(path=path, contract=CHURN_LABEL)
    fingerprint(raw)
    with pytest.raises(DeliveryError, match=f"churn_label.csv.*label_day.*{optional}"):
        check_header(raw)
