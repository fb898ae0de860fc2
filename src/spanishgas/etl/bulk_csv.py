"""Bronze for the large CSV files: Spark tasks that parse, check and write blocks of the file with Arrow.

The hourly consumption file holds about 176 million rows. Spark's CSV reader and Parquet writer convert
every value through its row format, which made this one file most of bronze's time; Arrow's C++ reader,
compute kernels and Parquet writer do the same work several times faster per core. So a large CSV file is
cut into byte ranges, and Spark runs one task per range (on a cluster as locally): the task reads the
lines that start in its range, parses them with Arrow, applies the contract's checks in the same order as
:func:`spanishgas.etl.bronze.conform_to_contract`, stamps the lineage columns and writes one Parquet part
file of the bronze table. Readers see the same table, columns and types as from the Spark path.

Line ownership follows Hadoop's line reader: a range owns every line that starts inside it, so each line
is read by exactly one task whatever the block size. Rows with the wrong number of fields keep their
values as ``_raw`` (the whole line when it has more than one value too many, where Spark's reader would
keep only the first).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from spanishgas.contracts import ColumnType, DeliveryWindow, FileContract
from spanishgas.etl.arrow_io import lake_filesystem, s3_settings, single_array
from spanishgas.etl.rows import (
    EXTRA,
    IRREGULAR,
    MAPPED,
    RAW_TEXT,
    REASON,
    STATUS,
    ContractCheck,
    contract_checks,
    count_data_lines,
)

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession


_WHITESPACE = "".join(chr(c) for c in range(0x21))  # what Java's trim() removes, as Spark's reader does
BUCKETED_TABLES = frozenset({"consumption_hourly"})  # written in customer buckets for silver
_CAST_CHUNK = 4096  # when a column does not cast as a whole, it is retried in chunks of this many values


# ---------------------------------------------------------------- blocks of lines


@dataclass(frozen=True)
class Block:
    """One Spark task's share of a raw file: the lines that start in ``[start, end)``."""

    path: str
    start: int
    end: int
    number: int


def plan_blocks(path: str, size: int, block_bytes: int) -> list[Block]:
    """Cut a file of ``size`` bytes into ranges of about ``block_bytes``."""
    if block_bytes <= 0:
        raise ValueError("block_bytes must be positive")
    starts = list(range(0, max(size, 1), block_bytes))
    return [Block(path, s, min(s + block_bytes, size), i) for i, s in enumerate(starts)]


def read_block_lines(path: str, start: int, end: int) -> tuple[int, bytes]:
    """The whole lines of ``path`` that start at a byte offset in ``[start, end)`` (the header skipped), and
    the offset of the first of them.

    A line belongs to the range its first byte is in, so consecutive ranges read every line once; the
    driver checks that the spans the tasks read tile the file.
    """
    with open(path, "rb") as fh:
        if start == 0:
            fh.readline()  # the header
        else:
            # back up one byte: if it ends a line, the range starts on a line start; else skip the partial line
            fh.seek(start - 1)
            fh.readline()
        first = fh.tell()
        if first >= end:
            return first, b""
        data = fh.read(end - first)
        if data and not data.endswith(b"\n"):
            data += fh.readline()  # finish the line that starts inside the range
        return first, data


def header_length(path: str) -> int:
    """Bytes of the header line, terminator included: where the first block's span must start."""
    with open(path, "rb") as fh:
        return len(fh.readline())


def uncovered(spans: list[tuple[int, int]], header_bytes: int, size: int) -> str:
    """Why the byte spans the tasks read do not tile ``[header_bytes, size)`` exactly, or ``""``."""
    position = header_bytes
    for first, last in sorted(s for s in spans if s[1] > s[0]):
        if first != position:
            return f"bytes {position}-{first} read {'twice' if first < position else 'by no task'}"
        position = last
    if position != size:
        return f"bytes {position}-{size} read by no task"
    return ""


# ---------------------------------------------------------------- parsing and checks (pure, Arrow tables)


def parse_lines(data: bytes, header: list[str], contract: FileContract) -> pa.Table:
    """CSV lines as text columns: every contracted column (null when absent from the file or empty),
    ``_extra_field`` (the first value beyond the header's columns) and ``_irregular_line`` (the original text
    of a row with two or more values beyond the header, else null). Values are trimmed, as Spark's reader does."""
    import pyarrow as pa

    irregular: list[str] = []

    def keep_aside(row: Any) -> str:
        if row.text.strip(_WHITESPACE):  # a line of nothing but whitespace is no row, as for Spark's reader
            irregular.append(row.text)
        return "skip"

    names = contract.column_names
    present = [h for h in header if h in names]
    if not data.lstrip(b"\r\n"):  # nothing but blank lines (lstrip copies nothing in the usual case)
        empty = {n: pa.array([], pa.string()) for n in [*names, EXTRA, IRREGULAR]}
        return pa.table(empty)
    # unique placeholder names for columns outside the contract, which are not read
    column_names = [h if h in names else f"__ignored_{i}" for i, h in enumerate(header)]
    # Bytes that are not UTF-8 would fail Arrow's read (as a UTF-8 error, or as a row with the wrong number
    # of fields it cannot hand over as text): they are replaced by U+FFFD first, as Spark's reader does.
    # Checking costs about 0.06 s per 128 MiB block (CPython validates ASCII quickly).
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        data = data.decode("utf-8", errors="replace").encode("utf-8")
    table = _read_csv(data, column_names, present, keep_aside)
    rows = table.num_rows
    columns: dict[str, pa.Array] = {}
    for name in names:
        if name in present:
            columns[name] = _trimmed(single_array(table.column(name)))
        else:
            columns[name] = pa.nulls(rows, pa.string())
    columns[EXTRA] = pa.nulls(rows, pa.string())
    columns[IRREGULAR] = pa.nulls(rows, pa.string())
    regular = pa.table(columns)
    if not irregular:
        return regular
    # Rows with too few or too many fields, read as Spark's permissive reader would: missing values are
    # null, the first value beyond the header becomes _extra_field; the line itself is kept as the raw text.
    by_name: dict[str, list[str | None]] = {n: [] for n in [*names, EXTRA, IRREGULAR]}
    for text in irregular:
        values = next(csv.reader([text]), [])
        cells = {h: (values[i].strip() or None) if i < len(values) else None for i, h in enumerate(header)}
        for name in names:
            by_name[name].append(cells.get(name))
        beyond = values[len(header)] if len(values) > len(header) else None
        # an empty value beyond the last column (a trailing comma) is no value, as for Spark's reader
        by_name[EXTRA].append((beyond.strip() or None) if beyond is not None else None)
        # the line itself is the raw text only where joining the values would lose some (two or more extra
        # values: Spark's reader keeps just the first); otherwise both paths give the same text
        by_name[IRREGULAR].append(text if len(values) > len(header) + 1 else None)
    extra_rows = pa.table({n: pa.array(v, pa.string()) for n, v in by_name.items()})
    return pa.concat_tables([regular, extra_rows])


def _read_csv(data: bytes, column_names: list[str], present: list[str], keep_aside: Any) -> pa.Table:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    return pacsv.read_csv(
        pa.BufferReader(data),
        # Arrow parses in 16 MiB pieces: one piece per task block is twice as slow at 128 MiB
        read_options=pacsv.ReadOptions(column_names=column_names, use_threads=False, block_size=16 * 1024**2),
        parse_options=pacsv.ParseOptions(invalid_row_handler=keep_aside),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in column_names},
            include_columns=present,
            # only an empty cell is missing, as for Spark (Arrow would also take "n/a", "NULL", "nan", ...)
            null_values=[""],
            strings_can_be_null=True,
        ),
    )


def _trimmed(values: pa.Array) -> pa.Array:
    """Values without surrounding whitespace, blank ones null; untouched when nothing needs it (the usual case)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    needs = pc.or_(pc.starts_with(values, " "), pc.ends_with(values, " "))
    needs = pc.or_(needs, pc.or_(pc.starts_with(values, "\t"), pc.ends_with(values, "\t")))
    if not pc.any(needs).as_py():
        return values
    trimmed = pc.utf8_trim_whitespace(values)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


_ARROW_TYPES = {
    ColumnType.INT: "int32",
    ColumnType.FLAG: "int32",
    ColumnType.FLOAT: "float64",
    ColumnType.DATE: "date32",
    ColumnType.MONTH: "date32",
    ColumnType.TIMESTAMP: "timestamp_us",
}


def arrow_type(kind: ColumnType) -> pa.DataType:
    """The Arrow type a contracted column is stored as (the same Spark type as the Spark path's)."""
    import pyarrow as pa

    name = _ARROW_TYPES.get(kind)
    if name is None:
        return pa.string()
    if name == "timestamp_us":
        return pa.timestamp("us")  # no time zone: local wall-clock time, read by Spark as TIMESTAMP_NTZ
    return {"int32": pa.int32(), "float64": pa.float64(), "date32": pa.date32()}[name]


def try_cast(values: pa.Array, target: pa.DataType) -> pa.Array:
    """Cast text to ``target``; a value that does not parse becomes null instead of failing the column.

    Arrow casts a column all or nothing, so a column that fails is retried in chunks and only the failing
    chunks value by value: clean blocks (nearly all) pay for one cast.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.cast(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    parts = []
    for offset in range(0, len(values), _CAST_CHUNK):
        chunk = values.slice(offset, _CAST_CHUNK)
        try:
            parts.append(pc.cast(chunk, target))
            continue
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        one_by_one = []
        for i in range(len(chunk)):
            try:
                one_by_one.append(pc.cast(chunk.slice(i, 1), target))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                one_by_one.append(pa.nulls(1, target))
        parts.append(pa.concat_arrays(one_by_one))
    return pa.concat_arrays(parts) if parts else pa.array([], target)


def parse_column(values: pa.Array, kind: ColumnType) -> pa.Array:
    """Typed values of one text column, null where the text does not follow the contract's layout.

    Same layouts as the Spark path: dates exactly ``YYYY-MM-DD``, months ``YYYY-MM``, timestamps
    ``YYYY-MM-DD HH:MM:SS``; Arrow's parsers reject impossible dates (2023-02-29) as Spark's do.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind is ColumnType.STRING:
        return values
    target = arrow_type(kind)
    if kind in (ColumnType.INT, ColumnType.FLAG, ColumnType.FLOAT):
        return try_cast(values, target)
    length = pc.utf8_length(values)
    if kind is ColumnType.DATE:
        shaped = pc.equal(length, 10)
        text = values
    elif kind is ColumnType.MONTH:
        shaped = pc.equal(length, 7)
        text = pc.binary_join_element_wise(values, pa.scalar("-01"), "")
    else:
        shaped = pc.and_(pc.equal(length, 19), pc.equal(pc.utf8_slice_codeunits(values, 10, 11), " "))
        text = values
    # only well-shaped text reaches the parser (it would accept 2024-1-5 or a 'T' separator); masking
    # copies every value, so it is done only when some value is not well shaped
    shaped = pc.fill_null(shaped, True)  # a null stays null either way
    if not pc.all(shaped).as_py():
        text = pc.if_else(shaped, text, pa.scalar(None, pa.string()))
    return try_cast(text, target)


def _failed(check: ContractCheck, text: dict[str, pa.Array], typed: dict[str, pa.Array]) -> pa.Array:
    """Where a row fails ``check`` (false, never null)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if check.kind == "extra":
        mask = pc.is_valid(text[EXTRA])
    elif check.kind == "corrupt":
        mask = pa.array([False] * len(text[EXTRA]))
    elif check.kind == "missing":
        mask = pc.is_null(text[check.column])
    elif check.kind == "bad_type":
        mask = pc.and_(pc.is_valid(text[check.column]), pc.is_null(typed[check.column]))
    elif check.kind == "below":
        mask = pc.less(typed[check.column], pa.scalar(check.bound).cast(typed[check.column].type))
    elif check.kind == "above":
        mask = pc.greater(typed[check.column], pa.scalar(check.bound).cast(typed[check.column].type))
    elif check.kind == "pattern":
        mask = pc.invert(pc.match_substring_regex(text[check.column], check.pattern))
    elif check.kind == "outside":
        values = typed[check.column]
        mask = pa.array([False] * len(values), pa.bool_())
        for bound, compare in ((check.earliest, pc.less), (check.latest, pc.greater)):
            if bound is not None:
                mask = pc.or_(mask, pc.fill_null(compare(values, pa.scalar(bound, type=values.type)), False))
    else:
        allowed = pa.array(list(check.allowed)).cast(typed[check.column].type)
        mask = pc.invert(pc.is_in(typed[check.column], value_set=allowed))
    return pc.fill_null(mask, False)


def conform_lines(
    text: pa.Table, contract: FileContract, window: DeliveryWindow | None = None, filename: str = ""
) -> pa.Table:
    """Arrow twin of :func:`spanishgas.etl.bronze.conform_to_contract` for parsed CSV lines.

    Returned: the typed contracted columns, ``_quarantine_reason`` (the first check the row fails, else
    null) and ``_raw`` (for quarantined rows only: the values joined by commas, or the line itself when it
    had values that the join would lose), and for a contract with unknown tokens ``_mapped_to_unknown``.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    names = contract.column_names
    columns = {n: single_array(text.column(n)) for n in [*names, EXTRA, IRREGULAR]}
    typed = {c.name: parse_column(columns[c.name], c.type) for c in contract.columns}
    checks = contract_checks(contract, extra=True, corrupt=False, window=window, filename=filename)
    rows = text.num_rows
    failing = pa.array([False] * rows) if rows else pa.array([], pa.bool_())
    masks = []
    for check in checks:
        mask = _failed(check, columns, typed)
        masks.append(mask)
        failing = pc.or_(failing, mask)
    reason = pa.nulls(rows, pa.string())
    raw = pa.nulls(rows, pa.string())
    if rows and pc.any(failing).as_py():
        # only the failing rows walk the checks for their first reason (nearly every row passes)
        where = pc.indices_nonzero(failing)
        labels: list[str | None] = [None] * len(where)
        for check, mask in zip(checks, masks, strict=True):
            hits = pc.take(mask, where).to_pylist()
            for i, hit in enumerate(hits):
                if hit and labels[i] is None:
                    labels[i] = check.label
        reason = pc.replace_with_mask(reason, failing, pa.array(labels, pa.string()))
        joined = pc.binary_join_element_wise(*[pc.fill_null(columns[n], "") for n in names], pa.scalar(","))
        joined = pc.if_else(
            pc.is_valid(columns[EXTRA]), pc.binary_join_element_wise(joined, columns[EXTRA], ","), joined
        )
        joined = pc.coalesce(columns[IRREGULAR], joined)
        raw = pc.replace_with_mask(raw, failing, pc.take(joined, where))
    mapped = _mapped_to_unknown(contract, columns, typed, failing)
    return pa.table({**typed, REASON: reason, RAW_TEXT: raw, **mapped})


def _mapped_to_unknown(
    contract: FileContract, text: dict[str, pa.Array], typed: dict[str, pa.Array], failing: pa.Array
) -> dict[str, pa.Array]:
    """Values outside the vocabulary replaced by the unknown token in ``typed`` (in place), and the note of
    what each accepted row had instead (the ``_mapped_to_unknown`` column); nothing for other contracts."""
    import pyarrow as pa
    import pyarrow.compute as pc

    mappable = [c for c in contract.columns if c.unknown_token]
    if not mappable:
        return {}
    rows = len(failing)
    outside: dict[str, pa.Array] = {}
    for c in mappable:
        values = text[c.name]
        out = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, value_set=pa.array(list(c.allowed)))))
        outside[c.name] = pc.fill_null(out, False)
        typed[c.name] = pc.if_else(outside[c.name], pa.scalar(c.unknown_token), typed[c.name])
    noted = pa.array([False] * rows, pa.bool_())
    for mask in outside.values():
        noted = pc.or_(noted, mask)
    noted = pc.and_(noted, pc.invert(failing))
    note = pa.nulls(rows, pa.string())
    if rows and pc.any(noted).as_py():
        # few rows are outside a vocabulary: their notes are written one by one
        where = pc.indices_nonzero(noted)
        picked = {
            name: (pc.take(mask, where).to_pylist(), pc.take(text[name], where).to_pylist())
            for name, mask in outside.items()
        }
        texts = [
            ";".join(f"{name}={values[i]}" for name, (hits, values) in picked.items() if hits[i])
            for i in range(len(where))
        ]
        note = pc.replace_with_mask(note, noted, pa.array(texts, pa.string()))
    return {MAPPED: note}


def with_lineage(table: pa.Table, run_id: str, source_file: str, sha256: str, ingested_at: datetime) -> pa.Table:
    """Arrow twin of ``with_ingestion_metadata``: run, source file, checksum, ingestion time and status."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = table.num_rows

    def constant(value: str) -> pa.Array:
        # a dictionary of one value: nothing is copied per row, and Parquet stores it dictionary-encoded anyway
        return pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)), pa.array([value]))

    micros = (ingested_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)  # no float rounding
    ingested = pa.array(np.full(rows, micros, dtype=np.int64)).cast(pa.timestamp("us", tz="UTC"))
    status = pa.DictionaryArray.from_arrays(
        pc.cast(pc.is_valid(single_array(table.column(REASON))), pa.int32()), pa.array(["accepted", "quarantined"])
    )
    return (
        table.append_column("_run_id", constant(run_id))
        .append_column("_source_file", constant(source_file))
        .append_column("_source_sha256", constant(sha256))
        .append_column("_ingested_at", ingested)
        .append_column(STATUS, status)
    )


# ---------------------------------------------------------------- the Spark tasks


@dataclass(frozen=True)
class BlockTask:
    """Everything one task needs; plain values so Spark can ship it to any executor."""

    block: Block
    file_number: int
    header: tuple[str, ...]
    contract_name: str
    run_id: str
    source_file: str
    sha256: str
    ingested_at: datetime
    table_uri: str
    s3: dict[str, str] | None = None
    customer_buckets: int = 0  # > 0: one part file per customer bucket (silver's hourly path reads by bucket)
    window: DeliveryWindow | None = None  # the delivery's period, for the date and reading-year rules


def ingest_block(task: BlockTask) -> dict[str, Any]:
    """Parse, check and write one block as a Parquet part file; return what it counted."""
    import pyarrow.parquet as pq

    from spanishgas.contracts import RAW_FILES

    contract = next(c for c in RAW_FILES if c.name == task.contract_name)
    first, data = read_block_lines(task.block.path, task.block.start, task.block.end)
    counted = {"file": task.source_file, "block": task.block.number, "span": (first, first + len(data))}
    if not data:  # no line starts in this range (a long line, or a header-only file)
        return {**counted, "rows": 0, "quarantined": 0, "lines": 0}
    text = parse_lines(data, list(task.header), contract)
    conformed = conform_lines(text, contract, task.window, task.source_file)
    table = with_lineage(conformed, task.run_id, task.source_file, task.sha256, task.ingested_at)
    if table.num_rows:
        from spanishgas.etl.hourly_buckets import bucket_file_name, split_by_bucket

        filesystem, root = lake_filesystem(task.table_uri, s3_settings(task.s3))
        # file names are fixed by file, block and bucket: a retried task rewrites them, never duplicates rows
        if task.customer_buckets:
            for bucket, part in split_by_bucket(table, task.customer_buckets).items():
                name = bucket_file_name(task.file_number, task.block.number, bucket)
                pq.write_table(part, f"{root}/{name}", filesystem=filesystem, compression="zstd", store_schema=False)
        else:
            name = f"part-{task.file_number:03d}-{task.block.number:05d}.zstd.parquet"
            # store_schema=False: readers see plain strings, not the dictionaries used to build the columns
            pq.write_table(table, f"{root}/{name}", filesystem=filesystem, compression="zstd", store_schema=False)
    quarantined = table.num_rows - table.column(REASON).null_count
    return {
        **counted,
        "rows": table.num_rows,
        "quarantined": quarantined,
        # counted from the raw bytes, not by the parser: rows in, to reconcile against
        "lines": _data_lines(data, table.num_rows),
    }


def _data_lines(data: bytes, parsed_rows: int) -> int:
    """Non-empty lines of a block, cheaply in the usual case.

    Every parsed row takes at least one non-empty line, so when the rows parsed equal all the lines there
    is no blank line among them and the line count is exact. Otherwise (blank lines, or lines the parser
    merged) the blank lines are found and taken out, and reconciliation judges the rest.
    """
    lines = data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)
    return lines if parsed_rows == lines else count_data_lines(data)


def ingest_files(spark: SparkSession, tasks: list[BlockTask]) -> dict[str, tuple[int, int, int, str]]:
    """Run the block tasks on the cluster. Per source file: rows written, rows quarantined, data lines, and
    why the byte spans the tasks read do not tile the file (``""`` when they do)."""
    if not tasks:
        return {}
    first = tasks[0]
    filesystem, root = lake_filesystem(first.table_uri, s3_settings(first.s3))
    filesystem.create_dir(root, recursive=True)
    results = spark.sparkContext.parallelize(tasks, len(tasks)).map(ingest_block).collect()
    totals: dict[str, list[int]] = {}
    spans: dict[str, list[tuple[int, int]]] = {}
    for r in results:
        total = totals.setdefault(r["file"], [0, 0, 0])
        total[0] += r["rows"]
        total[1] += r["quarantined"]
        total[2] += r["lines"]
        spans.setdefault(r["file"], []).append(tuple(r["span"]))
    paths = {task.source_file: task.block.path for task in tasks}
    return {
        name: (
            rows,
            quarantined,
            lines,
            uncovered(spans[name], header_length(paths[name]), os.path.getsize(paths[name])),
        )
        for name, (rows, quarantined, lines) in totals.items()
    }
