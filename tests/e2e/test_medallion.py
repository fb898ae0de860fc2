"""The medallion pipeline end to end on generated data: reconciliation, quarantine, gates, publication."""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from spanishgas.etl import pipeline
from spanishgas.etl.bronze import DeliveryError
from spanishgas.generator import Dirtiness, GeneratorConfig, generate
from spanishgas.lake import Lake
from spanishgas.quality import gates
from spanishgas.settings import EtlSettings, Settings
from tests.lake_tables import assert_same_tables

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.slow]


def _data_rows(path: Path) -> int:
    """Rows of a delivered file counted the plain way (not bronze's way): JSON records, or CSV lines that
    are not blank, less the header."""
    if path.suffix == ".json":
        return len(json.loads(path.read_text(encoding="utf-8")))
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return sum(1 for line in fh if line.strip("\r\n")) - 1


def test_every_row_of_every_file_is_accounted_for(spark, small_lake, small_delivery) -> None:  # type: ignore[no-untyped-def]
    bronze = small_lake["bronze"]
    raw, truth = small_delivery
    planted = json.loads((truth / "generator_manifest.json").read_text())["report"]["files"]
    # rows in the written bronze tables (accepted and quarantined alike), per source file
    written: dict[str, int] = {}
    for path in bronze["tables"].values():
        for row in spark.read.parquet(path).groupBy("_source_file").count().collect():
            written[row["_source_file"]] = row["count"]
    for name, f in bronze["files"].items():
        rows = _data_rows(raw / name)
        assert written[name] == rows == f["rows_in"] == f["rows_accepted"] + f["rows_quarantined"], name
        assert f["sha256"] == planted[name]["sha256"]  # the file bronze read is the file delivered, untouched
    prices = bronze["files"]["price_history.csv"]
    assert (
        prices["quarantined_by_reason"].get("missing customer_id") == planted["price_history.csv"]["blank_customer_id"]
    )
    # silver drops exactly the planted duplicate readings
    silver = small_lake["silver"]
    dupes = planted["consumption_hourly_2024.csv"]["duplicates"]
    accepted = bronze["files"]["consumption_hourly_2024.csv"]["rows_accepted"]
    unknown = sum(silver["quarantined_by_reason"]["consumption_hourly"].values())
    assert silver["rows"]["consumption_hourly"] == accepted - unknown - dupes
    lake = Lake(spark, str(small_lake["settings"].lake_uri))
    assert lake.published_runs("gold") == [small_lake["gold"]["run_id"]]
    assert all(g["success"] for g in small_lake["gold"]["gates"].values())
    docs = Path(small_lake["settings"].gx_root) / "uncommitted" / "data_docs" / "local_site" / "index.html"
    assert docs.exists()


def test_large_file_path_writes_what_the_spark_path_writes(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Bronze's Arrow path (large CSV files, in blocks and customer buckets) and silver's bucketed hourly path
    give the same tables and counts, row for row, as the Spark paths, on a delivery with every kind of dirt
    the generator plants and a few more broken lines."""
    generate(
        GeneratorConfig(
            customers=120,
            start=date(2024, 1, 1),
            end=date(2024, 3, 31),
            out_dir=tmp_path / "raw",
            truth_dir=tmp_path / "truth",
            dirtiness=Dirtiness.HARSH,
            workers=1,
        )
    )
    # and the kinds of broken line a real export can hold, spread through the file
    hourly_file = tmp_path / "raw" / "consumption_hourly_2024.csv"
    lines = hourly_file.read_bytes().splitlines(keepends=True)
    broken = [
        b"C00001,2024-01-05 10:00:00,n/a,0\n",
        b",2024-01-05 11:00:00,0.1,0\n",
        b"C00001,2024-01-05,0.1,0\n",
        b"C00001,2024-01-05 12:00:00,0.1,0,extra\n",
        b"C00001,2024-01-05 13:00:00,0.1\n",
        b'"C00001","2024-01-05 14:00:00","0.2",""\n',
        b"  C00001 , 2024-01-05 15:00:00 , 0.3 ,0\n",
        b"C00001,2024-02-30 00:00:00,0.1,0\n",
        b"C00001,2024-01-05 16:00:00,0.1,0\r\n",
        b"C00001,2024-01-05 17:00:00,0.1,0,\n",  # a trailing comma: no extra value
        b"C00001,2024-01-05 18:00:00,NaN,0\n",  # a NaN reading
        b"C00002,2024-03-31 02:30:00,0.1,0\n",  # half past, in the hour that does not exist locally
        b"C0000\xf1,2024-01-05 19:00:00,0.1,0\n",  # not UTF-8
        b"\n",  # blank lines are not rows
        b"\r\n",
        b"   \n",  # nor are lines of nothing but whitespace, for either reader
        b"\t \r\n",
        b"\x0c\n",
        b"C0000\xf2,2024-01-05 20:00:00,0.1\n",  # not UTF-8 and a field short
        b"C99999,2024-01-05 10:00:00,0.1,0\n",  # a customer silver does not know
        lines[7],  # an exact duplicate
        lines[7],
    ]
    step = len(lines) // (len(broken) + 1)
    for i, line in enumerate(broken, start=1):
        lines.insert(i * step, line)
    hourly_file.write_bytes(b"".join(lines))
    by_reader, silver_by_reader = {}, {}
    for reader, etl in {
        "spark": EtlSettings(bulk_csv_min_bytes=10**15),
        "arrow": EtlSettings(bulk_csv_min_bytes=0, bulk_csv_block_bytes=256 * 1024),  # every CSV file, many blocks
    }.items():
        settings = Settings(lake_uri=str(tmp_path / reader / "lake"), gx_root=tmp_path / reader / "gx", etl=etl)
        by_reader[reader] = pipeline.run_bronze(settings, raw_dir=tmp_path / "raw", spark=spark)
        silver_by_reader[reader] = pipeline.run_silver(settings, spark=spark)
    spark_run, arrow_run = by_reader["spark"], by_reader["arrow"]
    assert {f["reader"] for f in arrow_run["files"].values()} == {"arrow blocks", "spark"}  # JSON stays on Spark
    counted = ("rows_in", "rows_accepted", "rows_quarantined", "quarantined_by_reason", "sha256", "status")
    for name, f in spark_run["files"].items():
        assert {k: arrow_run["files"][name][k] for k in counted} == {k: f[k] for k in counted}, name
    hourly = arrow_run["files"]["consumption_hourly_2024.csv"]
    assert hourly["rows_quarantined"] > 0 and hourly["reader"] == "arrow blocks"
    for table, path in spark_run["tables"].items():
        expected = spark.read.parquet(path).drop("_run_id", "_ingested_at")
        actual = spark.read.parquet(arrow_run["tables"][table]).drop("_run_id", "_ingested_at")
        assert actual.schema == expected.schema, table
        assertDataFrameEqual(actual, expected)
    assert arrow_run["customer_buckets"] == {"consumption_hourly": 16} and spark_run["customer_buckets"] == {}
    spark_silver, arrow_silver = silver_by_reader["spark"], silver_by_reader["arrow"]
    assert arrow_silver["rows"] == spark_silver["rows"]
    assert arrow_silver["quarantined_by_reason"] == spark_silver["quarantined_by_reason"]
    assert spark_silver["quarantined_by_reason"]["consumption_hourly"]["unknown customer"] >= 1
    for table in ("consumption_hourly", "customer_month"):
        expected = spark.read.parquet(spark_silver["tables"][table])
        actual = spark.read.parquet(arrow_silver["tables"][table])
        assert actual.schema == expected.schema, table
        assertDataFrameEqual(actual, expected)
        # assertDataFrameEqual takes NaN for equal to any number: the NaN reading is checked by hand
        assert actual.filter(F.isnan("elec_kwh")).count() == expected.filter(F.isnan("elec_kwh")).count() >= 1


def test_harsh_delivery_quarantines_with_reasons(spark, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    cfg = GeneratorConfig(
        customers=150,
        start=date(2024, 1, 1),
        end=date(2024, 3, 31),
        out_dir=tmp_path / "raw",
        truth_dir=tmp_path / "truth",
        dirtiness=Dirtiness.HARSH,
        workers=1,
    )
    generate(cfg)
    settings = Settings(lake_uri=str(tmp_path / "lake"), gx_root=tmp_path / "gx")
    with caplog.at_level(logging.INFO, logger="spanishgas.progress"):
        manifest = pipeline.run_bronze(settings, raw_dir=tmp_path / "raw", spark=spark)
    # one log line per step, as an Airflow task log shows them: each table written, each gate passed
    steps = [r.getMessage() for r in caplog.records if r.name == "spanishgas.progress"]
    tables = len({f["table"] for f in manifest["files"].values()})
    assert [m for m in steps if m.startswith("bronze tables ")][-1].startswith(f"bronze tables {tables}/{tables}: ")
    assert [m for m in steps if m.startswith("bronze gates ")][-1].startswith(f"bronze gates {tables}/{tables}: ")
    hourly = manifest["files"]["consumption_hourly_2024.csv"]
    assert hourly["rows_quarantined"] > 0
    assert set(hourly["quarantined_by_reason"]) <= {
        "too many fields",
        "missing consumption_gas_m3",
        "bad float in consumption_elec_kwh",
    }
    contacts = manifest["files"]["customer_interactions.json"]
    assert {"missing customer_id", "bad date in date"} & set(contacts["quarantined_by_reason"])
    quarantine = spark.read.parquet(
        str(Path(settings.lake_uri) / "bronze" / "runs" / manifest["run_id"] / "_quarantine" / "consumption_hourly")
    )
    assert quarantine.count() == hourly["rows_quarantined"]
    assert quarantine.filter(F.col("_raw").isNull() | F.col("_quarantine_reason").isNull()).count() == 0
    silver = pipeline.run_silver(settings, spark=spark)
    assert silver["quarantined_by_reason"]["consumption_hourly"]["unknown customer"] > 0


def test_a_failed_gate_publishes_nothing(spark, small_lake, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    settings = small_lake["settings"]
    lake = Lake(spark, str(settings.lake_uri))
    before = lake.published_runs("silver")
    started = time.time() - 1

    def impossible(table: str) -> list[gates.Rule]:
        return [gates.Rule("row_count", kwargs={"value": 0})]  # every silver table of the small lake has rows

    monkeypatch.setattr(gates, "silver_rules", impossible)
    with pytest.raises(gates.GateFailed, match="silver gate failed"):
        pipeline.run_silver(settings, run_id="silver-bad", spark=spark)
    assert lake.published_runs("silver") == before
    recorded = json.loads(lake.read_text(lake.path("silver", "runs", "silver-bad", "_manifest.json")))
    assert recorded["status"] == "failed"
    # the failed gate's report is in Data Docs, where the engineer looks first
    failed_table = next(t for t, g in recorded["gates"].items() if not g["success"])
    site = Path(settings.gx_root) / "uncommitted" / "data_docs" / gates.DOCS_SITE
    pages = [p for p in (site / "validations" / "silver" / failed_table).rglob("*.html") if p.stat().st_mtime > started]
    assert len(pages) == 1
    assert "Must have exactly 0 rows" in " ".join(re.sub(r"<[^>]+>", " ", pages[0].read_text()).split())
    assert pages[0].name in (site / "index.html").read_text()
    # and the next stage still reads the last good run
    assert lake.latest_run("silver") == before[-1]


def test_a_renamed_column_stops_the_run_and_publishes_nothing(spark, small_delivery, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    raw, _ = small_delivery
    drop = tmp_path / "raw"
    drop.mkdir()
    for f in raw.iterdir():
        (drop / f.name).symlink_to(f)
    (drop / "customer_contracts.csv").unlink()
    text = (raw / "customer_contracts.csv").read_text().replace("next_renewal_date", "renewal_date", 1)
    (drop / "customer_contracts.csv").write_text(text)
    settings = Settings(lake_uri=str(tmp_path / "lake"), gx_root=tmp_path / "gx")
    with pytest.raises(DeliveryError, match=r"customer_contracts\.csv: missing column\(s\) next_renewal_date"):
        pipeline.run_bronze(settings, raw_dir=drop, spark=spark)
    assert Lake(spark, str(settings.lake_uri)).published_runs("bronze") == []


def test_rows_that_do_not_reconcile_fail_the_run_and_publish_nothing(  # type: ignore[no-untyped-def]
    spark, small_delivery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file whose raw row count disagrees with what Spark read (here: one row more in the raw count)
    fails the run naming the file, leaves a manifest that says so, and publishes nothing."""
    from spanishgas.etl import bronze

    real = bronze.fingerprint

    def one_row_more(raw: bronze.RawFile, *args: object, **kwargs: object) -> None:
        real(raw, *args, **kwargs)  # type: ignore[arg-type]
        if raw.path.name == "churn_label.csv":
            raw.rows_in += 1

    monkeypatch.setattr(bronze, "fingerprint", one_row_more)
    raw, _ = small_delivery
    settings = Settings(lake_uri=str(tmp_path / "lake"), gx_root=tmp_path / "gx")
    with pytest.raises(DeliveryError, match=r"rows do not reconcile, nothing published \(churn_label.csv"):
        pipeline.run_bronze(settings, raw_dir=raw, spark=spark)
    lake = Lake(spark, str(settings.lake_uri))
    assert lake.published_runs("bronze") == []
    (manifest_path,) = (tmp_path / "lake" / "bronze" / "runs").glob("*/_manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["status"] == "failed"
    assert manifest["files"]["churn_label.csv"]["status"] == "row count mismatch"
    assert manifest["files"]["customer_attributes.csv"]["status"] == "ok"


def test_a_missing_required_value_fails_the_large_table_gate(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The hourly tables check "no required value missing" as one count per row: it still fails on one null."""
    import datetime as dt

    contract = gates.contract_by_table()["consumption_hourly"]
    rules = gates.bronze_rules(contract, accepted_rows=2)
    assert not [r for r in rules if r.kind == "not_null"]  # folded into the one count
    schema = "customer_id string, timestamp timestamp_ntz, consumption_elec_kwh double, consumption_gas_m3 double"
    ctx = gates.context(tmp_path / "gx")
    good = spark.createDataFrame([("C1", dt.datetime(2024, 1, 1), 0.1, 0.0)] * 2, schema)
    assert gates.run_gate(ctx, "bronze", "consumption_hourly", good, rules)["success"]
    bad = spark.createDataFrame(
        [("C1", dt.datetime(2024, 1, 1), 0.1, 0.0), ("C2", dt.datetime(2024, 1, 1), None, 0.0)], schema
    )
    with pytest.raises(gates.GateFailed, match="_missing_required_values"):
        gates.run_gate(ctx, "bronze", "consumption_hourly", bad, rules)


def test_damaged_snapshots_and_impossible_values_do_not_stop_a_delivery(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The four ways a new user's damaged delivery used to fail: contracts repeated verbatim, a customer's
    attributes delivered twice with different values, impossible readings (10^12 kWh, stamped years later, a
    malformed id), and region/channel tokens outside the vocabulary. Bronze and silver go on, and each
    outcome is counted in the manifests and the data-quality tables; too many conflicts stop the run."""
    from spanishgas.etl.silver import ConflictingDelivery
    from spanishgas.lake_reader import LakeReader
    from spanishgas.monitoring.quality import quality_tables

    raw = tmp_path / "raw"
    generate(
        GeneratorConfig(
            customers=120,
            start=date(2024, 1, 1),
            end=date(2024, 7, 31),  # long enough for matured labels: gold is rerun too
            out_dir=raw,
            truth_dir=tmp_path / "truth",
            workers=1,
        )
    )

    def lines_of(name: str) -> list[str]:
        return (raw / name).read_text().splitlines()

    contracts = lines_of("customer_contracts.csv")
    (raw / "customer_contracts.csv").write_text("\n".join([*contracts, *contracts[1:6]]) + "\n")  # 5 repeated
    attributes = lines_of("customer_attributes.csv")
    header = attributes[0].split(",")
    first = attributes[1].split(",")
    other = dict(zip(header, first, strict=True))
    other["contracted_power_kw"] = "99.5"  # the same customer with different values
    second = dict(zip(header, attributes[2].split(","), strict=True))
    second["region"], second["sales_channel"] = "atlantis", "carrier_pigeon"
    rows = [attributes[0], attributes[1], ",".join(second.values()), *attributes[3:], ",".join(other.values())]
    (raw / "customer_attributes.csv").write_text("\n".join(rows) + "\n")
    customer = first[0]
    with (raw / "consumption_hourly_2024.csv").open("a") as hourly:
        hourly.write(f"{customer},2024-02-01 10:00:00,1000000000000,0\n")
        hourly.write(f"{customer},2031-02-01 10:00:00,0.4,0\n")
        hourly.write("C12,2024-02-01 10:00:00,0.4,0\n")

    settings = Settings(
        lake_uri=str(tmp_path / "lake"), gx_root=tmp_path / "gx", etl=EtlSettings(max_conflicting_share=0.05)
    )
    bronze = pipeline.run_bronze(settings, raw_dir=raw, spark=spark)  # no uniqueness gate stops it
    readings = bronze["files"]["consumption_hourly_2024.csv"]["quarantined_by_reason"]
    assert readings["consumption_elec_kwh above 3000"] == 1
    assert readings["timestamp outside the file's year"] == 1
    assert readings["customer_id not in the utility's format"] == 1
    assert bronze["files"]["customer_attributes.csv"]["mapped_to_unknown"] == {
        "region": {"rows": 1, "values": {"atlantis": 1}},
        "sales_channel": {"rows": 1, "values": {"carrier_pigeon": 1}},
    }
    assert bronze["delivery_window"]["first_day"] == "2024-01-01"

    silver = pipeline.run_silver(settings, spark=spark)
    assert silver["duplicates"]["customer_contracts"]["exact_duplicates_dropped"] == 5
    assert silver["duplicates"]["customer_contracts"]["conflicting_rows_quarantined"] == 0
    assert silver["duplicates"]["customer_attributes"]["conflicting_rows_quarantined"] == 2
    assert silver["quarantined_by_reason"]["customer_attributes"] == {"conflicting duplicate": 2}
    customers = spark.read.parquet(silver["tables"]["customers"])
    assert customers.filter(F.col("customer_id") == customer).count() == 0  # every version quarantined
    attributes_in = bronze["files"]["customer_attributes.csv"]
    dropped = silver["duplicates"]["customer_attributes"]["exact_duplicates_dropped"]
    assert customers.count() == attributes_in["rows_accepted"] - dropped - 2
    assert customers.filter(F.col("customer_id") == second["customer_id"]).first()["region"] == "unknown"

    # the same inputs again give the same tables, row for row (run ids and ingestion times aside), and gold
    # built from either silver run is the same
    bronze_again = pipeline.run_bronze(settings, raw_dir=raw, spark=spark)
    assert_same_tables(spark, bronze["tables"], bronze_again["tables"])
    assert {
        n: {k: f[k] for k in ("rows_in", "rows_quarantined", "quarantined_by_reason", "mapped_to_unknown")}
        for n, f in bronze_again["files"].items()
    } == {
        n: {k: f[k] for k in ("rows_in", "rows_quarantined", "quarantined_by_reason", "mapped_to_unknown")}
        for n, f in bronze["files"].items()
    }
    silver_again = pipeline.run_silver(settings, bronze_run=bronze_again["run_id"], spark=spark)
    assert_same_tables(spark, silver["tables"], silver_again["tables"])
    assert silver_again["duplicates"] == silver["duplicates"]
    gold = pipeline.run_gold(settings, silver_run=silver["run_id"], spark=spark)
    gold_again = pipeline.run_gold(settings, silver_run=silver_again["run_id"], spark=spark)
    assert_same_tables(spark, gold["tables"], gold_again["tables"])

    runs, _ = quality_tables(LakeReader(str(settings.lake_uri)))
    by_run = runs.set_index("run_id")
    assert by_run.loc[bronze["run_id"], "values_mapped_unknown"] == 2
    dropped_in_all = sum(d["exact_duplicates_dropped"] for d in silver["duplicates"].values())
    assert by_run.loc[silver["run_id"], "rows_dropped_duplicate"] == dropped_in_all >= 5

    # the same delivery with the default threshold: 2 conflicting rows are more than 1 % of ~110
    strict = settings.model_copy(update={"etl": EtlSettings()})
    lake = Lake(spark, str(settings.lake_uri))
    published = lake.published_runs("silver")
    share = 2 / attributes_in["rows_accepted"]
    expected = f"customer_attributes.csv: 2 of {attributes_in['rows_accepted']} rows ({share:.2%}) conflict on"
    with pytest.raises(ConflictingDelivery, match=re.escape(expected)):
        pipeline.run_silver(strict, run_id="silver-conflicts", spark=spark)
    assert lake.published_runs("silver") == published
    recorded = json.loads(lake.read_text(lake.path("silver", "runs", "silver-conflicts", "_manifest.json")))
    assert recorded["status"] == "failed" and "customer_id" in recorded["error"]
