"""Plausibility rules of the contracts, on both of bronze's readers (Spark for the small files, Arrow
blocks for the large CSV files): the impossible quarantined with the rule's name, the real delivery's
legitimate extremes kept, unknown categories mapped and counted, and every row accounted for."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spanishgas.contracts import (
    CONSUMPTION_HOURLY,
    CUSTOMER_ATTRIBUTES,
    CUSTOMER_CONTRACTS,
    MAX_HOURLY_ELEC_KWH,
    PRICE_HISTORY,
    UNKNOWN,
    DeliveryWindow,
    FileContract,
)
from spanishgas.etl.bronze import MAPPED, REASON, RawFile, check_header, conform_to_contract, fingerprint, read_raw
from spanishgas.etl.bulk_csv import BlockTask, conform_lines, ingest_block, parse_lines, plan_blocks

HOURLY_FILE = "consumption_hourly_2024.csv"
WINDOW = DeliveryWindow(dt.date(2024, 1, 1), dt.date(2024, 12, 31), tolerance_days=31, reading_tolerance_hours=1)
HOURLY_HEADER = "customer_id,timestamp,consumption_elec_kwh,consumption_gas_m3"

# (line, the reason both readers must give it: None = accepted)
HOURLY_CASES = [
    ("C00001,2024-03-31 02:00:00,0.5,0", None),
    ("C00002,2024-06-01 12:00:00,-0.9,-0.23", None),  # meter corrections, as the real delivery has them
    (f"C00003,2024-01-15 19:00:00,{MAX_HOURLY_ELEC_KWH:g},999", None),  # the largest plausible hour
    ("C00004,2023-12-31 23:00:00,1.0,0", None),  # within the hour's tolerance of the file's year
    ("C00010,2024-05-01 11:00:00,NaN,0", None),  # a NaN reading is no bound's business (Spark sorts it high)
    ("C00005,2024-05-01 10:00:00,1000000000000,0", f"consumption_elec_kwh above {MAX_HOURLY_ELEC_KWH:g}"),
    ("C00006,2024-05-01 10:00:00,1.0,5000", "consumption_gas_m3 above 1000"),
    ("C00007,2024-05-01 10:00:00,-500,0", "consumption_elec_kwh below -100"),
    ("C00008,2027-05-01 10:00:00,1.0,0", "timestamp outside the file's year"),
    ("C00009,2023-12-31 21:00:00,1.0,0", "timestamp outside the file's year"),
    ("X-12,2024-05-01 10:00:00,1.0,0", "customer_id not in the utility's format"),
    ("C12,2024-05-01 10:00:00,1.0,0", "customer_id not in the utility's format"),
]


def _write(tmp_path: Path, name: str, header: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text(header + "\n" + "".join(f"{line}\n" for line in lines))
    return path


def _spark_rows(spark, path: Path, contract: FileContract) -> list[dict]:  # type: ignore[no-untyped-def]
    raw = RawFile(path=path, contract=contract)
    fingerprint(raw)
    check_header(raw)
    out = conform_to_contract(read_raw(spark, raw), contract, WINDOW, path.name)
    return [r.asDict() for r in out.collect()]


def _arrow_rows(path: Path, contract: FileContract) -> list[dict]:
    lines = path.read_bytes().split(b"\n", 1)[1]
    header = path.read_text().splitlines()[0].split(",")
    return conform_lines(parse_lines(lines, header, contract), contract, WINDOW, path.name).to_pylist()


@pytest.mark.spark
def test_impossible_readings_are_quarantined_and_real_extremes_kept_by_both_readers(spark, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, HOURLY_FILE, HOURLY_HEADER, [line for line, _ in HOURLY_CASES])
    expected = {line.split(",")[0]: reason for line, reason in HOURLY_CASES}
    for rows in (_spark_rows(spark, path, CONSUMPTION_HOURLY), _arrow_rows(path, CONSUMPTION_HOURLY)):
        assert {r["customer_id"]: r[REASON] for r in rows} == expected


def test_a_reading_year_comes_from_the_file_name_and_without_one_the_year_is_not_checked(tmp_path: Path) -> None:
    lines = ["C00001,2027-05-01 10:00:00,1.0,0"]
    in_2027 = _write(tmp_path, "consumption_hourly_2027.csv", HOURLY_HEADER, lines)
    unnamed = _write(tmp_path, "consumption_hourly_extra.csv", HOURLY_HEADER, lines)
    assert [r[REASON] for r in _arrow_rows(in_2027, CONSUMPTION_HOURLY)] == [None]
    assert [r[REASON] for r in _arrow_rows(unnamed, CONSUMPTION_HOURLY)] == [None]
    assert DeliveryWindow.of_files(["consumption_hourly_extra.csv", "churn_label.csv"]) is None
    window = DeliveryWindow.of_files(["consumption_hourly_2023.csv", "consumption_hourly_2024.csv"])
    assert window is not None and (window.first_day, window.last_day) == (dt.date(2023, 1, 1), dt.date(2024, 12, 31))


ATTRIBUTES_HEADER = ",".join(CUSTOMER_ATTRIBUTES.column_names)


@pytest.mark.spark
def test_unknown_region_and_channel_become_the_unknown_token_and_are_noted(spark, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lines = [
        "C00001,4.6,0,0,28,comunidad_de_madrid,1,1,comparador",
        "C00002,4.6,0,0,28,atlantis,1,1,carrier_pigeon",
        "C00003,4.6,0,0,8,cataluna,1,1,desconocido",
        "C00004,4.6,0,0,99,atlantis,1,1,web_propia",  # quarantined for its province: nothing mapped
    ]
    path = _write(tmp_path, "customer_attributes.csv", ATTRIBUTES_HEADER, lines)
    for rows in (_spark_rows(spark, path, CUSTOMER_ATTRIBUTES), _arrow_rows(path, CUSTOMER_ATTRIBUTES)):
        by_id = {r["customer_id"]: r for r in rows}
        assert by_id["C00001"]["region"] == "comunidad_de_madrid" and by_id["C00001"][MAPPED] is None
        assert (by_id["C00002"]["region"], by_id["C00002"]["sales_channel"]) == (UNKNOWN, UNKNOWN)
        assert by_id["C00002"][MAPPED] == "region=atlantis;sales_channel=carrier_pigeon"
        assert by_id["C00002"][REASON] is None  # the customer is kept
        assert by_id["C00003"]["sales_channel"] == "desconocido" and by_id["C00003"][MAPPED] is None
        assert by_id["C00004"][REASON] == "province_code above 52" and by_id["C00004"][MAPPED] is None


@pytest.mark.spark
def test_dates_outside_the_delivery_period_are_quarantined(spark, tmp_path) -> None:  # type: ignore[no-untyped-def]
    contracts = _write(
        tmp_path,
        "customer_contracts.csv",
        ",".join(CUSTOMER_CONTRACTS.column_names),
        [
            "C00001,2015-03-01,2024-03-01,,2025-03-01",  # renews within a year of the period: kept
            "C00002,2015-03-01,2024-03-01,,2024-11-02",  # expired in the period: kept
            "C00003,2031-03-01,2024-03-01,,2025-03-01",  # activated years after the delivery
            "C00004,2015-03-01,2024-03-01,,2029-03-01",  # a renewal five years ahead: no annual contract
        ],
    )
    prices = _write(
        tmp_path,
        "price_history.csv",
        ",".join(PRICE_HISTORY.column_names),
        [
            "C00001,2024-12-01,0.15,0.12,0.09,15,10,,,",
            "C00002,2019-12-01,0.15,0.12,0.09,15,10,,,",
            "C00003,2024-02-01,45,0.12,0.09,15,10,,,",
        ],
    )
    expected_contracts = {
        "C00001": None,
        "C00002": None,
        "C00003": "customer_first_activation_date outside the delivery's period",
        "C00004": "next_renewal_date outside the delivery's period",
    }
    expected_prices = {
        "C00001": None,
        "C00002": "pricing_date outside the delivery's period",
        "C00003": "variable_price_tier1_eur_kwh above 2",
    }
    for read in (lambda p, c: _spark_rows(spark, p, c), _arrow_rows):
        assert {r["customer_id"]: r[REASON] for r in read(contracts, CUSTOMER_CONTRACTS)} == expected_contracts
        assert {r["customer_id"]: r[REASON] for r in read(prices, PRICE_HISTORY)} == expected_prices


# A damaged line: any of these in place of a good one. (An unbalanced quote joins lines in the parser: the
# counts then differ and bronze fails the delivery as "row count mismatch", a whole-file error.)
DAMAGE = st.sampled_from(
    [
        "C00001,2024-03-31 02:00:00,0.5,0",
        "C00002,2024-03-31 02:00:00,1e12,0",
        "C00003,2031-01-01 00:00:00,0.5,0",
        "bad id,2024-03-31 02:00:00,0.5,0",
        "C00004,2024-02-30 02:00:00,0.5,0",
        "C00005,2024-03-31 02:00:00,0.5",
        "C00006,2024-03-31 02:00:00,0.5,0,9",
        "C00007,,,",
        "",
        "\u00f1\u00f1\u00f1",
    ]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(DAMAGE, min_size=1, max_size=40), block=st.integers(min_value=40, max_value=400))
def test_rows_in_equal_accepted_plus_quarantined_for_randomly_damaged_files(tmp_path_factory, lines, block) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("damaged")
    path = _write(folder, HOURLY_FILE, HOURLY_HEADER, lines)
    raw = RawFile(path=path, contract=CONSUMPTION_HOURLY)
    fingerprint(raw)
    blocks = plan_blocks(str(path), raw.size, block)
    (folder / "table").mkdir()
    totals = {"rows": 0, "quarantined": 0, "lines": 0}
    for b in blocks:
        task = BlockTask(
            block=b,
            file_number=0,
            header=tuple(HOURLY_HEADER.split(",")),
            contract_name=CONSUMPTION_HOURLY.name,
            run_id="r",
            source_file=path.name,
            sha256=raw.sha256,
            ingested_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
            table_uri=str(folder / "table"),
            window=WINDOW,
        )
        out = ingest_block(task)
        for k in totals:
            totals[k] += out[k]
    # every data line of the raw bytes lands as one row, accepted or quarantined
    assert totals["lines"] == raw.rows_in
    assert totals["rows"] == raw.rows_in
    assert 0 <= totals["quarantined"] <= totals["rows"]
    good = sum(1 for line in lines if line == "C00001,2024-03-31 02:00:00,0.5,0")
    assert totals["rows"] - totals["quarantined"] == good
