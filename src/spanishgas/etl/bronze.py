"""Bronze: the raw drop as typed Parquet, every row accounted for.

Each ingestion is a run with its own id. For every delivered file the run checks the file (present, not
empty, every contracted column in the header), parses each row against the contract, and writes accepted
and quarantined rows (with the reason and the raw text) under the run. Rows in = rows accepted + rows
quarantined, per file, with rows in counted from the raw bytes, not by a parser (for a large file, by each
block task over its own bytes, the blocks checked to tile the file). The raw files are only read.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spanishgas import progress
from spanishgas.contracts import RAW_FILES, ColumnType, DeliveryWindow, FileContract
from spanishgas.etl.arrow_io import s3_values
from spanishgas.etl.rows import (
    CORRUPT,
    EXTRA,
    MAPPED,
    RAW_TEXT,
    REASON,
    STATUS,
    ContractCheck,
    DeliveryError,
    blank_lines,
    contract_checks,
    last_line_counts,
    line_carry,
)
from spanishgas.lake import LayerRun, manifest_header

if TYPE_CHECKING:
    from pyspark.sql import Column as SparkColumn
    from pyspark.sql import DataFrame, SparkSession

    from spanishgas.lake import Lake
    from spanishgas.settings import EtlSettings, S3Settings


@dataclass
class RawFile:
    """One delivered file, checked and fingerprinted before Spark reads it."""

    path: Path
    contract: FileContract
    sha256: str = ""
    size: int = 0
    rows_in: int = 0
    header: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- pure transforms (DataFrame -> DataFrame)


def _clean(col: SparkColumn, trim: bool) -> SparkColumn:
    """Blank means missing. The CSV reader already trims and turns empty cells into nulls, so only JSON
    values need it here (trimming 176 million timestamps again would cost seconds for nothing)."""
    from pyspark.sql import functions as F

    if not trim:
        return col
    trimmed = F.trim(col)
    return F.when(trimmed == "", None).otherwise(trimmed)


def _parse(col: SparkColumn, kind: ColumnType) -> SparkColumn:
    """Typed value, or null when the text does not parse. Dates and timestamps use Spark's native cast
    (much faster than a formatter) guarded by the exact length, so only the contracted layout passes."""
    from pyspark.sql import functions as F

    if kind is ColumnType.STRING:
        return col
    if kind in (ColumnType.INT, ColumnType.FLAG):
        return col.try_cast("int")
    if kind is ColumnType.FLOAT:
        return col.try_cast("double")
    if kind is ColumnType.DATE:
        return F.when(F.length(col) == 10, col.try_cast("date"))
    if kind is ColumnType.MONTH:
        return F.when(F.length(col) == 7, F.concat(col, F.lit("-01")).try_cast("date"))
    # Local wall-clock time without an offset: TIMESTAMP_NTZ keeps it exactly as delivered.
    return F.when((F.length(col) == 19) & (F.substring(col, 11, 1) == " "), col.try_cast("timestamp_ntz"))


def _spark_bound(value: date | datetime, kind: ColumnType) -> SparkColumn:
    from pyspark.sql import functions as F

    if kind is ColumnType.TIMESTAMP:
        return F.lit(value.isoformat(sep=" ")).cast("timestamp_ntz")  # type: ignore[call-arg]
    return F.lit(value.isoformat()[:10]).cast("date")


def conform_to_contract(
    raw: DataFrame, contract: FileContract, window: DeliveryWindow | None = None, filename: str = ""
) -> DataFrame:
    """Type every contracted column and give each row the first reason it breaks the contract (or null).

    ``raw`` holds the contracted columns as strings, plus ``_extra_field`` (CSV: a token beyond the last
    column) and/or ``_corrupt_record`` (a record Spark could not parse) when the reader provides them.
    Returned: the typed columns, ``_quarantine_reason`` and ``_raw`` (the original values, kept only for
    quarantined rows so nothing is lost), and for a contract with unknown tokens ``_mapped_to_unknown``.
    """
    from pyspark.sql import functions as F

    cleaned = {c.name: _clean(F.col(c.name), trim=contract.format == "json") for c in contract.columns}
    parsed = {c.name: _parse(cleaned[c.name], c.type) for c in contract.columns}
    kinds = {c.name: c.type for c in contract.columns}
    outside_vocabulary = {
        c.name: cleaned[c.name].isNotNull() & ~cleaned[c.name].isin(list(c.allowed))
        for c in contract.columns
        if c.unknown_token
    }

    def failed(check: ContractCheck) -> SparkColumn:
        if check.kind == "extra":
            return F.col(EXTRA).isNotNull()
        if check.kind == "corrupt":
            return F.col(CORRUPT).isNotNull()
        if check.kind == "missing":
            return cleaned[check.column].isNull()
        if check.kind == "bad_type":
            return cleaned[check.column].isNotNull() & parsed[check.column].isNull()
        if check.kind == "below":
            return parsed[check.column] < F.lit(check.bound)
        if check.kind == "above":
            above = parsed[check.column] > F.lit(check.bound)
            if kinds[check.column] is ColumnType.FLOAT:  # Spark orders NaN above every number; Arrow does not
                above = above & ~F.isnan(parsed[check.column])
            return above
        if check.kind == "pattern":
            return ~cleaned[check.column].rlike(check.pattern)
        if check.kind == "outside":
            column, kind = parsed[check.column], kinds[check.column]
            early = F.lit(False) if check.earliest is None else column < _spark_bound(check.earliest, kind)
            late = F.lit(False) if check.latest is None else column > _spark_bound(check.latest, kind)
            return early | late
        return ~parsed[check.column].isin(list(check.allowed))

    checks = [
        (failed(check), check.label)
        for check in contract_checks(
            contract, extra=EXTRA in raw.columns, corrupt=CORRUPT in raw.columns, window=window, filename=filename
        )
    ]
    # Almost every row passes: one short-circuiting test decides that, and only failing rows walk the
    # chain of checks to find their first reason (a third of bronze's transform time otherwise).
    passes: SparkColumn = F.lit(True)
    for condition, _ in checks:
        passes = passes & ~F.coalesce(condition, F.lit(False))
    first_failure: SparkColumn = F.lit(None).cast("string")
    for condition, label in reversed(checks):
        first_failure = F.when(F.coalesce(condition, F.lit(False)), F.lit(label)).otherwise(first_failure)
    reason = F.when(passes, F.lit(None).cast("string")).otherwise(first_failure)
    raw_cols = [F.coalesce(F.col(c.name), F.lit("")) for c in contract.columns]
    raw_text = F.concat_ws(",", *raw_cols)
    if EXTRA in raw.columns:
        raw_text = F.when(F.col(EXTRA).isNotNull(), F.concat_ws(",", raw_text, F.col(EXTRA))).otherwise(raw_text)
    if CORRUPT in raw.columns:
        raw_text = F.coalesce(F.col(CORRUPT), raw_text)
    typed = dict(parsed)
    extra_columns = []
    if outside_vocabulary:
        for c in contract.columns:
            if c.name in outside_vocabulary:
                typed[c.name] = F.when(outside_vocabulary[c.name], F.lit(c.unknown_token)).otherwise(parsed[c.name])
        note = F.concat_ws(
            ";", *[F.when(bad, F.concat(F.lit(f"{name}="), cleaned[name])) for name, bad in outside_vocabulary.items()]
        )
        extra_columns.append(F.when(passes & (note != ""), note).alias(MAPPED))
    return raw.select(
        *[typed[c.name].alias(c.name) for c in contract.columns],
        reason.alias(REASON),
        F.when(passes, F.lit(None).cast("string")).otherwise(raw_text).alias(RAW_TEXT),
        *extra_columns,
    )


def with_ingestion_metadata(df: DataFrame, run_id: str, source: RawFile, ingested_at: datetime) -> DataFrame:
    """Stamp each row with the run, the source file, its checksum and the ingestion time."""
    from pyspark.sql import functions as F

    return df.select(
        "*",
        F.lit(run_id).alias("_run_id"),
        F.lit(source.path.name).alias("_source_file"),
        F.lit(source.sha256).alias("_source_sha256"),
        F.lit(ingested_at).cast("timestamp").alias("_ingested_at"),
        F.when(F.col(REASON).isNull(), F.lit("accepted")).otherwise(F.lit("quarantined")).alias(STATUS),
    )


# ---------------------------------------------------------------- checks on the raw files (no Spark)


def find_raw_files(raw_dir: Path) -> list[RawFile]:
    """Every contracted file in the drop; fails naming what is missing."""
    if not raw_dir.is_dir():
        raise DeliveryError(f"raw folder {raw_dir} does not exist")
    found: list[RawFile] = []
    missing = []
    for contract in RAW_FILES:
        paths = sorted(p for p in raw_dir.iterdir() if p.is_file() and contract.matches(p.name))
        if not paths:
            missing.append(contract.pattern)
        found += [RawFile(path=p, contract=contract) for p in paths]
    if missing:
        raise DeliveryError(f"missing file(s) in {raw_dir}: {', '.join(missing)}")
    return found


def delivered_columns(raw: RawFile) -> dict[str, list[str]]:
    """The header a CSV file came with, its extra columns (ignored) and its absent optional columns, for
    the manifest (monitoring reports schema changes from them); nothing for JSON files."""
    if not raw.header:
        return {}
    names = raw.contract.column_names
    return {
        "columns": list(raw.header),
        "columns_ignored": [h for h in raw.header if h not in names],
        "columns_absent": [c for c in names if c not in raw.header],
    }


def check_header(raw: RawFile, rows_counted: bool = True) -> None:
    """Fail when a file is empty or lacks a contracted column (a renamed column shows as both)."""
    if raw.size == 0:
        raise DeliveryError(f"{raw.path.name} is empty (0 bytes)")
    if raw.contract.format == "json":
        return  # JSON keys are checked on the parsed records
    with open(raw.path, encoding="utf-8-sig", newline="") as fh:
        header = fh.readline().strip("\r\n")
    raw.header = [h.strip() for h in header.split(",")]
    missing = [c for c in raw.contract.required_columns if c not in raw.header]
    unexpected = [h for h in raw.header if h not in raw.contract.column_names]
    if missing:
        hint = f"; unexpected column(s): {', '.join(unexpected)}" if unexpected else ""
        raise DeliveryError(f"{raw.path.name}: missing column(s) {', '.join(missing)}{hint}")
    # An optional column may be absent and an extra one ignored, but both at once is most likely a rename,
    # which would otherwise turn the optional column into nulls without a word.
    absent = [c for c in raw.contract.column_names if c not in raw.header]
    if absent and unexpected:
        raise DeliveryError(
            f"{raw.path.name}: unexpected column(s) {', '.join(unexpected)} and missing optional column(s) "
            f"{', '.join(absent)}: renamed? Deliver the contracted names (spanishgas contracts)"
        )
    if rows_counted and raw.rows_in == 0:
        raise DeliveryError(f"{raw.path.name} has a header but no rows")


def fingerprint(raw: RawFile, chunk: int = 1 << 24, count_rows: bool = True) -> None:
    """SHA-256 and data-row count of a file in one read (rows: non-empty lines after the header).

    ``count_rows=False`` only hashes: the large-file path counts each block's lines in its own task.
    """
    digest = hashlib.sha256()
    if not count_rows:
        size = 0
        with open(raw.path, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
                size += len(block)
        raw.sha256, raw.size = digest.hexdigest(), size
        return
    lines = blank = 0
    size = 0
    last = b"\n"
    carry = b""
    with open(raw.path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
            size += len(block)
            lines += block.count(b"\n")
            # the previous block from its last line end on, so a blank line split across the boundary is seen
            joined = carry + block
            blank += blank_lines(joined, len(carry))
            carry = line_carry(joined)
            last = block[-1:]
    if size and last != b"\n":
        lines += last_line_counts(carry)
    raw.sha256 = digest.hexdigest()
    raw.size = size
    if raw.contract.format == "csv":
        raw.rows_in = max(lines - blank - 1, 0)


def count_json_records(raw: RawFile) -> None:
    """Records in a JSON array file; fails when the file is not a JSON array."""
    try:
        records = json.loads(raw.path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DeliveryError(f"{raw.path.name} is not valid JSON: {exc}") from exc
    if not isinstance(records, list):
        raise DeliveryError(f"{raw.path.name} must hold a JSON array of records")
    if not records:
        raise DeliveryError(f"{raw.path.name} holds no records")
    keys = set().union(*(r.keys() for r in records if isinstance(r, dict)))
    missing = [c for c in raw.contract.required_columns if c not in keys]
    if missing:
        raise DeliveryError(f"{raw.path.name}: no record has the field(s) {', '.join(missing)}")
    raw.rows_in = len(records)


# ---------------------------------------------------------------- the run


def read_raw(spark: SparkSession, raw: RawFile) -> DataFrame:
    """The file's rows with every contracted column as a string (plus parser bookkeeping columns)."""
    from pyspark.sql.types import StringType, StructField, StructType

    names = raw.contract.column_names
    if raw.contract.format == "json":
        schema = StructType([StructField(n, StringType()) for n in [*names, CORRUPT]])
        return spark.read.json(
            str(raw.path), schema=schema, multiLine=True, mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT
        )
    # The schema has one column more than the header on purpose (to catch extra fields): silence Spark's
    # warning about it, once per file, which would otherwise bury real warnings.
    jvm = spark.sparkContext._jvm
    jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
        "org.apache.spark.sql.catalyst.csv.CSVHeaderChecker", jvm.org.apache.logging.log4j.Level.ERROR
    )
    # Columns follow the header's order; an optional column absent from the file becomes null.
    present = [h for h in raw.header if h in names]
    schema = StructType([StructField(n, StringType()) for n in [*raw.header, EXTRA]])
    df = spark.read.csv(
        str(raw.path),
        schema=schema,
        header=True,
        mode="PERMISSIVE",
        enforceSchema=True,
        ignoreLeadingWhiteSpace=True,
        ignoreTrailingWhiteSpace=True,
    )
    from pyspark.sql import functions as F

    return df.select(*[F.col(n) if n in present else F.lit(None).cast("string").alias(n) for n in names], EXTRA)


def mapped_counts(written: DataFrame, examples: int = 5) -> dict[str, dict[str, Any]]:
    """Per source file and column: how many accepted rows had a value outside the vocabulary (now the
    unknown token), and the commonest of those values, so the manifest says which and how many."""
    from pyspark.sql import functions as F

    notes = written.filter(F.col(MAPPED).isNotNull()).groupBy("_source_file", MAPPED).count().collect()
    out: dict[str, dict[str, Any]] = {}
    for row in notes:
        for part in row[MAPPED].split(";"):
            column, _, value = part.partition("=")
            entry = out.setdefault(row["_source_file"], {}).setdefault(column, {"rows": 0, "values": {}})
            entry["rows"] += row["count"]
            entry["values"][value] = entry["values"].get(value, 0) + row["count"]
    for columns in out.values():
        for entry in columns.values():
            commonest = sorted(entry["values"].items(), key=lambda kv: (-kv[1], kv[0]))[:examples]
            entry["values"] = dict(commonest)
    return out


@dataclass
class DeliveryPlan:
    """The delivered files grouped by bronze table, the period their dates must fall in, and which tables
    are large enough for the Arrow block tasks."""

    raw_dir: Path
    files: list[RawFile]
    window: DeliveryWindow | None
    by_table: dict[str, list[RawFile]]
    bulk_tables: set[str]


@dataclass
class TableWrite:
    """What writing one table saw: per file (rows, quarantined) as the writer counted them (-1: unknown),
    and the large files whose blocks did not read every byte exactly once."""

    seen: dict[str, tuple[int, int]]
    uncovered: dict[str, str] = field(default_factory=dict)
    buckets: int = 0


def plan_delivery(raw_dir: Path, etl: EtlSettings) -> DeliveryPlan:
    """Find the delivered files, their tables, the delivery's period and the engine each table gets."""
    files = find_raw_files(raw_dir)
    window = DeliveryWindow.of_files(
        [f.path.name for f in files], etl.period_tolerance_days, etl.reading_tolerance_hours
    )
    by_table: dict[str, list[RawFile]] = {}
    for f in files:
        by_table.setdefault(f.contract.name, []).append(f)
    bulk_tables = {
        table
        for table, sources in by_table.items()
        if sources[0].contract.format == "csv" and sum(f.path.stat().st_size for f in sources) >= etl.bulk_csv_min_bytes
    }
    return DeliveryPlan(raw_dir, files, window, by_table, bulk_tables)


def fingerprint_delivery(plan: DeliveryPlan) -> None:
    """Checksum every file, count its rows (the large files' lines are counted by their block tasks, from
    the same raw bytes) and check its header; two files at once, as the machine has two cores."""
    threads = [
        threading.Thread(target=fingerprint, args=(f,), kwargs={"count_rows": f.contract.name not in plan.bulk_tables})
        for f in plan.files
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for f in plan.files:
        if f.contract.format == "json":
            if f.size == 0:
                raise DeliveryError(f"{f.path.name} is empty (0 bytes)")
            count_json_records(f)
        check_header(f, rows_counted=f.contract.name not in plan.bulk_tables)


def write_with_arrow_blocks(
    spark: SparkSession,
    plan: DeliveryPlan,
    sources: list[RawFile],
    path: str,
    run_id: str,
    started: datetime,
    etl: EtlSettings,
    s3: S3Settings | None,
) -> TableWrite:
    """A large CSV table read by Arrow inside Spark tasks, block by block (:mod:`spanishgas.etl.bulk_csv`)."""
    from spanishgas.etl import bulk_csv

    table = sources[0].contract.name
    # only the hourly readings are cleaned by bucket in silver; other tables keep one file per block
    buckets = etl.customer_buckets if table in bulk_csv.BUCKETED_TABLES else 0
    tasks = [
        bulk_csv.BlockTask(
            block=block,
            file_number=number,
            header=tuple(f.header),
            contract_name=f.contract.name,
            run_id=run_id,
            source_file=f.path.name,
            sha256=f.sha256,
            ingested_at=started,
            table_uri=path,
            s3=s3_values(s3),
            customer_buckets=buckets,
            window=plan.window,
        )
        for number, f in enumerate(sources)
        for block in bulk_csv.plan_blocks(str(f.path), f.size, etl.bulk_csv_block_bytes)
    ]
    counted = bulk_csv.ingest_files(spark, tasks)
    written = TableWrite(seen={}, buckets=buckets)
    for f in sources:
        rows, quarantined, lines, gap = counted.get(f.path.name, (0, 0, 0, ""))
        # rows in: the tasks' own line counts, valid because their byte spans tile the file exactly
        f.rows_in = lines
        if gap:
            written.uncovered[f.path.name] = gap
        elif lines == 0:
            raise DeliveryError(f"{f.path.name} has a header but no rows")
        written.seen[f.path.name] = (rows, quarantined)
    return written


def write_with_spark(
    spark: SparkSession, plan: DeliveryPlan, sources: list[RawFile], path: str, run_id: str, started: datetime
) -> TableWrite:
    """A table read by Spark's own readers, its rows counted while they are written."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    frames, observed = [], {}
    for f in sources:
        conformed = conform_to_contract(read_raw(spark, f), f.contract, plan.window, f.path.name)
        frame = with_ingestion_metadata(conformed, run_id, f, started)
        # counted while the rows are written, so the large tables are not read a second time
        observed[f.path.name] = Observation()
        frames.append(
            frame.observe(observed[f.path.name], F.count(F.lit(1)).alias("rows"), F.count(REASON).alias("quarantined"))
        )
    df = frames[0]
    for other in frames[1:]:
        df = df.unionByName(other)
    # one pass over the raw file: every row lands in the table with its status; the quarantine folder then
    # gets a copy of the few quarantined rows
    df.write.mode("errorifexists").parquet(path)
    # Spark answers {} for an observation whose step never ran: that file is then not reconciled.
    results = {name: obs.get for name, obs in observed.items()}
    return TableWrite(seen={name: (r.get("rows", -1), r.get("quarantined", -1)) for name, r in results.items()})


def reconcile_table(
    spark: SparkSession, lake: Lake, run_id: str, path: str, sources: list[RawFile], written: TableWrite
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Read the written table back: copy its quarantined rows aside, and check per file that rows in =
    accepted + quarantined, as the writer counted them and as the table holds them. Returns each file's
    accounting (rows, reasons, status) and the values mapped to the unknown token, by file."""
    from pyspark.sql import functions as F

    table = sources[0].contract.name
    table_rows = spark.read.parquet(path)
    written_rows = table_rows.count()  # no column is decoded for a count
    quarantined_rows = table_rows.filter(F.col(STATUS) == "quarantined")
    counts = quarantined_rows.groupBy("_source_file", REASON).count().collect()
    mapped = mapped_counts(table_rows) if MAPPED in table_rows.columns else {}
    if counts:
        quarantined_rows.write.mode("errorifexists").parquet(lake.path("bronze", "runs", run_id, "_quarantine", table))
    table_ok = written_rows == sum(rows for rows, _ in written.seen.values())
    accounts = {}
    for f in sources:
        reasons = {r[REASON]: r["count"] for r in counts if r["_source_file"] == f.path.name}
        quarantined = sum(reasons.values())
        rows, observed_quarantined = written.seen[f.path.name]
        accepted = rows - observed_quarantined
        reconciled = (
            rows >= 0
            and table_ok
            and quarantined == observed_quarantined
            and accepted + quarantined == f.rows_in
            and f.path.name not in written.uncovered
        )
        accounts[f.path.name] = {
            "rows_in": f.rows_in,
            "rows_accepted": accepted,
            "rows_quarantined": quarantined,
            "quarantined_by_reason": dict(sorted(reasons.items())),
            "status": "ok" if reconciled else written.uncovered.get(f.path.name, "row count mismatch"),
        }
    return accounts, mapped


def file_entry(f: RawFile, account: dict[str, Any], mapped: dict[str, Any], seconds: float, bulk: bool) -> dict:
    """A delivered file's entry in the manifest: its accounting, fingerprint, contract and reader."""
    return {
        "table": f.contract.name,
        "rows_in": account["rows_in"],
        "rows_accepted": account["rows_accepted"],
        "rows_quarantined": account["rows_quarantined"],
        "quarantined_by_reason": account["quarantined_by_reason"],
        "mapped_to_unknown": mapped.get(f.path.name, {}),
        "sha256": f.sha256,
        "bytes": f.size,
        "schema": {c.name: c.type.value for c in f.contract.columns},
        **delivered_columns(f),
        "seconds": seconds,
        "reader": "arrow blocks" if bulk else "spark",
        "status": account["status"],
    }


def bronze_manifest(
    plan: DeliveryPlan,
    run_id: str,
    started: datetime,
    per_file: dict[str, dict[str, Any]],
    tables: dict[str, str],
    bucketed: dict[str, int],
) -> dict[str, Any]:
    """What a bronze run did, for its manifest."""
    window = plan.window
    return {
        **manifest_header("bronze", run_id, started, raw_dir=str(plan.raw_dir.resolve())),
        "files": per_file,
        # the period the dates were checked against (none: no hourly file names its year)
        "delivery_window": None
        if window is None
        else {
            "first_day": window.first_day.isoformat(),
            "last_day": window.last_day.isoformat(),
            "tolerance_days": window.tolerance_days,
            "reading_tolerance_hours": window.reading_tolerance_hours,
        },
        "tables": tables,
        # tables written in customer buckets (bucket in each part file's name), and how many buckets
        "customer_buckets": bucketed,
    }


def refuse_unreconciled(lake: Lake, run_id: str, manifest: dict[str, Any]) -> None:
    """Record a run whose rows do not reconcile as failed and stop it: nothing is published."""
    per_file = manifest["files"]
    mismatched = [name for name, v in per_file.items() if v["status"] != "ok"]
    if not mismatched:
        return
    manifest["status"] = "failed"
    lake.write_manifest("bronze", run_id, manifest)
    detail = "; ".join(
        f"{n}: {per_file[n]['rows_in']} in, {per_file[n]['rows_accepted']} accepted + "
        f"{per_file[n]['rows_quarantined']} quarantined"
        + (f" ({per_file[n]['status']})" if per_file[n]["status"] != "row count mismatch" else "")
        for n in mismatched
    )
    raise DeliveryError(f"rows do not reconcile, nothing published ({detail})")


def ingest(
    spark: SparkSession,
    lake: Lake,
    raw_dir: Path,
    run_id: str,
    etl: EtlSettings | None = None,
    s3: S3Settings | None = None,
) -> LayerRun:
    """Check, parse and write every delivered file under ``bronze/runs/<run_id>``; publish nothing yet.

    A CSV table of at least ``etl.bulk_csv_min_bytes`` is read by Arrow inside Spark tasks
    (:mod:`spanishgas.etl.bulk_csv`); every other file by Spark's readers. Both write the same columns.
    """
    from spanishgas.settings import EtlSettings

    etl = etl or EtlSettings()
    started = datetime.now(UTC)
    plan = plan_delivery(raw_dir, etl)
    fingerprint_delivery(plan)
    tables: dict[str, str] = {}
    bucketed: dict[str, int] = {}
    per_file: dict[str, dict[str, Any]] = {}
    with progress.steps("bronze tables", total=len(plan.by_table)) as step:
        for table, sources in plan.by_table.items():
            t0 = time.perf_counter()
            path = lake.table_path("bronze", run_id, table)
            bulk = table in plan.bulk_tables
            if bulk:
                if lake.exists(path):
                    raise DeliveryError(f"bronze table {path} already exists; a run never overwrites")
                written = write_with_arrow_blocks(spark, plan, sources, path, run_id, started, etl, s3)
            else:
                written = write_with_spark(spark, plan, sources, path, run_id, started)
            if written.buckets:
                bucketed[table] = written.buckets
            tables[table] = path
            accounts, mapped = reconcile_table(spark, lake, run_id, path, sources, written)
            seconds = round(time.perf_counter() - t0, 2)
            for f in sources:
                per_file[f.path.name] = file_entry(f, accounts[f.path.name], mapped, seconds, bulk)
            step(f"{table} written")
    manifest = bronze_manifest(plan, run_id, started, per_file, tables, bucketed)
    refuse_unreconciled(lake, run_id, manifest)
    return LayerRun(run_id=run_id, manifest=manifest, tables=tables)
