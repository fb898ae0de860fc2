"""Bronze's Arrow path for large CSV files: blocks of lines, parsing, typing and the contract's checks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spanishgas.contracts import CONSUMPTION_HOURLY, COSTS_BY_PROVINCE, ColumnType
from spanishgas.etl.arrow_io import lake_filesystem
from spanishgas.etl.bronze import RawFile, fingerprint
from spanishgas.etl.bulk_csv import (
    BlockTask,
    conform_lines,
    ingest_block,
    parse_column,
    parse_lines,
    plan_blocks,
    read_block_lines,
    try_cast,
    uncovered,
    with_lineage,
)
from spanishgas.etl.rows import count_data_lines
from spanishgas.settings import S3Settings

pytestmark = pytest.mark.unit

HEADER = "customer_id,timestamp,consumption_elec_kwh,consumption_gas_m3"


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(st.sampled_from(["", "\r", "a", "a,b", "ab\r", " "]), min_size=0, max_size=30),
    block=st.integers(min_value=1, max_value=80),
)
def test_blocks_read_every_line_once_whatever_the_block_size(tmp_path_factory, lines: list[str], block: int) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("blocks") / "f.csv"
    content = (HEADER + "\n" + "".join(f"{line}\n" for line in lines)).encode()
    path.write_bytes(content)
    blocks = plan_blocks(str(path), len(content), block)
    assert blocks[0].start == 0 and blocks[-1].end == len(content)
    spans = [read_block_lines(str(path), b.start, b.end) for b in blocks]
    parts = [data for _, data in spans]
    assert b"".join(parts) == "".join(f"{line}\n" for line in lines).encode()
    # the spans tile the file after the header exactly
    assert uncovered([(first, first + len(data)) for first, data in spans], len(HEADER) + 1, len(content)) == ""
    # the blocks' own line counts add up to the whole file's (blank lines, LF or CRLF, are not rows)
    whole = RawFile(path=path, contract=CONSUMPTION_HOURLY)
    fingerprint(whole)
    assert sum(count_data_lines(part) for part in parts) == whole.rows_in


def test_a_last_line_without_a_newline_is_read(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"h\nC1,x\nC2,y")
    blocks = plan_blocks(str(path), 13, 4)
    assert b"".join(read_block_lines(str(path), b.start, b.end)[1] for b in blocks) == b"C1,x\nC2,y"


def test_spans_that_miss_or_repeat_bytes_are_named() -> None:
    assert uncovered([(2, 10), (10, 20)], 2, 20) == ""
    assert uncovered([(2, 10), (12, 20)], 2, 20) == "bytes 10-12 read by no task"
    assert uncovered([(2, 10), (8, 20)], 2, 20) == "bytes 10-8 read twice"
    assert uncovered([(2, 10)], 2, 20) == "bytes 10-20 read by no task"
    assert uncovered([(2, 10), (10, 10), (10, 20)], 2, 20) == ""  # a block where no line starts


def test_a_block_where_no_line_starts_writes_nothing_and_counts_nothing(tmp_path: Path) -> None:
    path = tmp_path / "consumption_hourly_2024.csv"
    long_line = "C00001,2024-01-01 00:00:00," + "1" * 40 + ",0\n"
    path.write_text(HEADER + "\n" + long_line)
    task = BlockTask(
        block=plan_blocks(str(path), path.stat().st_size, 16)[2],  # inside the long line
        file_number=0,
        header=tuple(HEADER.split(",")),
        contract_name="consumption_hourly",
        run_id="bronze-1",
        source_file=path.name,
        sha256="0" * 64,
        ingested_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        table_uri=str(tmp_path / "table"),
    )
    out = ingest_block(task)
    assert (out["rows"], out["quarantined"], out["lines"]) == (0, 0, 0)
    assert out["span"][0] == out["span"][1]
    assert not (tmp_path / "table").exists()


def test_a_trailing_comma_is_no_extra_value_and_a_bad_byte_a_malformed_id() -> None:
    data = (
        b"C00001,2024-03-31 02:00:00,0.5,0,\n"
        b"C0000\xf1,2024-03-31 03:00:00,0.5,0\n"
        b"\x0c \n"  # nothing but whitespace: no row
        b"C0000\xf2,2024-03-31 04:00:00,0.5\n"  # not UTF-8 and a field short
    )
    out = conform_lines(parse_lines(data, HEADER.split(","), CONSUMPTION_HOURLY), CONSUMPTION_HOURLY)
    rows = sorted(out.to_pylist(), key=lambda r: str(r["timestamp"]))
    assert [r["customer_id"] for r in rows] == ["C00001", "C0000\ufffd", "C0000\ufffd"]  # replaced, as Spark does
    # the replaced byte leaves an id outside the utility's format: quarantined with that reason, no crash
    assert [r["_quarantine_reason"] for r in rows] == [
        None,
        "customer_id not in the utility's format",
        "missing consumption_gas_m3",
    ]


def test_lines_are_parsed_as_spark_reads_them() -> None:
    data = (
        b"C00001,2024-03-31 02:00:00,0.5,0\n"
        b"  C00002 , 2024-03-31 03:00:00 ,,0\n"  # padded values are trimmed, empty ones are null
        b"C00003,2024-03-31 04:00:00,0.1,0,extra\n"  # one value too many
        b"C00004,2024-03-31 05:00:00,0.1,0,x,y\n"  # two too many: the line is kept whole
        b"C00005,2024-03-31 06:00:00\n"  # too few
        b"\n"  # blank lines are not rows
    )
    text = parse_lines(data, HEADER.split(","), CONSUMPTION_HOURLY)
    rows = sorted(text.to_pylist(), key=lambda r: r["customer_id"])
    assert rows[0] == {
        "customer_id": "C00001",
        "timestamp": "2024-03-31 02:00:00",
        "consumption_elec_kwh": "0.5",
        "consumption_gas_m3": "0",
        "_extra_field": None,
        "_irregular_line": None,
    }
    assert rows[1]["customer_id"] == "C00002" and rows[1]["timestamp"] == "2024-03-31 03:00:00"
    assert rows[1]["consumption_elec_kwh"] is None
    assert rows[2]["_extra_field"] == "extra" and rows[2]["_irregular_line"] is None
    assert rows[3]["_extra_field"] == "x" and rows[3]["_irregular_line"] == "C00004,2024-03-31 05:00:00,0.1,0,x,y"
    assert rows[4]["consumption_elec_kwh"] is None and rows[4]["consumption_gas_m3"] is None
    assert len(rows) == 5


def test_columns_follow_the_header_and_absent_optional_columns_are_null() -> None:
    header = ["consumption_gas_m3", "timestamp", "unexpected", "customer_id", "consumption_elec_kwh"]
    text = parse_lines(b"1,2024-01-01 00:00:00,zzz,C1,2\n", header, CONSUMPTION_HOURLY)
    assert text.column_names[:4] == CONSUMPTION_HOURLY.column_names
    assert text.to_pylist()[0]["consumption_gas_m3"] == "1" and text.to_pylist()[0]["customer_id"] == "C1"


def test_a_value_that_does_not_parse_becomes_null_and_only_it() -> None:
    values = pa.array(["1.5"] * 5000 + ["n/a"] + ["2"] * 10 + [None])
    out = try_cast(values, pa.float64()).to_pylist()
    assert out[:5000] == [1.5] * 5000 and out[5000] is None and out[5001:5011] == [2.0] * 10 and out[-1] is None


def test_dates_months_and_timestamps_take_only_the_contracted_layout() -> None:
    dates = pa.array(["2024-02-29", "2023-02-29", "2024-2-29", "2024-02-29 00:00:00", None])
    assert parse_column(dates, ColumnType.DATE).to_pylist() == [dt.date(2024, 2, 29), None, None, None, None]
    months = pa.array(["2024-01", "2024-13", "2024-1"])
    assert parse_column(months, ColumnType.MONTH).to_pylist() == [dt.date(2024, 1, 1), None, None]
    stamps = pa.array(["2024-10-27 02:00:00", "2024-10-27T02:00:00", "2024-10-27 24:00:00", "2024-10-27"])
    assert parse_column(stamps, ColumnType.TIMESTAMP).to_pylist() == [dt.datetime(2024, 10, 27, 2), None, None, None]


def test_rows_get_the_same_first_reason_as_on_the_spark_path() -> None:
    # the rows of tests/unit/etl/test_bronze.py::test_rows_are_typed_or_quarantined_with_the_first_reason
    data = (
        b"C00001,2024-03-31 02:00:00,0.5,0\n"
        b"C00002,2024-03-31 03:00:00,n/a,0\n"
        b",2024-03-31 03:00:00,0.1,0\n"
        b"C00003,2024-03-31,0.1,0\n"
        b"C00004,2024-03-31 04:00:00,0.1,0,extra\n"
        b"C00005,2024-03-31 05:00:00,-0.9,\n"
    )
    out = conform_lines(parse_lines(data, HEADER.split(","), CONSUMPTION_HOURLY), CONSUMPTION_HOURLY)
    rows = {(r["customer_id"], r["_quarantine_reason"], r["_raw"]) for r in out.to_pylist()}
    assert rows == {
        ("C00001", None, None),
        ("C00002", "bad float in consumption_elec_kwh", "C00002,2024-03-31 03:00:00,n/a,0"),
        (None, "missing customer_id", ",2024-03-31 03:00:00,0.1,0"),
        ("C00003", "bad timestamp in timestamp", "C00003,2024-03-31,0.1,0"),
        ("C00004", "too many fields", "C00004,2024-03-31 04:00:00,0.1,0,extra"),
        ("C00005", "missing consumption_gas_m3", "C00005,2024-03-31 05:00:00,-0.9,"),
    }
    assert out.schema.field("timestamp").type == pa.timestamp("us")
    assert out.to_pylist()[0]["timestamp"] == dt.datetime(2024, 3, 31, 2)


def test_ranges_and_months_are_checked_as_on_the_spark_path() -> None:
    header = COSTS_BY_PROVINCE.column_names
    data = b"2024-01,28,0.07,0.7,0.015\n2024-13,28,0.07,0.7,0.015\n2024-02,99,0.07,0.7,0.015\n2024-02,8,-1,0.7,0.015\n"
    out = conform_lines(parse_lines(data, header, COSTS_BY_PROVINCE), COSTS_BY_PROVINCE)
    assert out.column("_quarantine_reason").to_pylist() == [
        None,
        "bad month in month",
        "province above 52",
        "elec_var_cost_eur_kwh below 0",
    ]


def test_lineage_marks_every_row_and_its_status() -> None:
    data = b"C00001,2024-03-31 02:00:00,0.5,0\nC00002,2024-03-31 03:00:00,n/a,0\n"
    checked = conform_lines(parse_lines(data, HEADER.split(","), CONSUMPTION_HOURLY), CONSUMPTION_HOURLY)
    at = dt.datetime(2024, 12, 1, 10, 30, tzinfo=dt.UTC)
    out = with_lineage(checked, "bronze-1", "consumption_hourly_2024.csv", "ab" * 32, at).to_pylist()
    assert [r["status"] for r in out] == ["accepted", "quarantined"]
    assert {(r["_run_id"], r["_source_file"], r["_source_sha256"], r["_ingested_at"]) for r in out} == {
        ("bronze-1", "consumption_hourly_2024.csv", "ab" * 32, at)
    }


def test_the_lake_location_maps_to_an_arrow_file_system() -> None:
    fs, path = lake_filesystem("/tmp/lake/bronze")
    assert fs.type_name == "local" and path == "/tmp/lake/bronze"
    fs, path = lake_filesystem("s3a://spanishgas-lake/lake/bronze", S3Settings())
    assert fs.type_name == "s3" and path == "spanishgas-lake/lake/bronze"
    with pytest.raises(ValueError, match="S3 settings"):
        lake_filesystem("s3a://bucket/x")


def test_a_block_counts_its_rows_from_the_bytes_blank_lines_left_out() -> None:
    from spanishgas.etl.bulk_csv import _data_lines

    clean = b"a\nb\nc"
    assert _data_lines(clean, 3) == 3
    blank = b"a\n\nb\r\n\r\nc\n"
    assert _data_lines(blank, 3) == 3  # two blank lines: the rows parsed are one check, not the count
    merged = b'"a\nb"\nc\n'  # a quote the parser runs across a line end: 3 lines, 2 rows parsed
    assert _data_lines(merged, 2) == 3
