"""Silver's hourly readings without a shuffle: one Spark task per customer bucket, the work done in Arrow.

Bronze's large-file path writes the hourly table split into customer buckets (a stable hash of the
customer id names the bucket in each part file's name), so every reading of a customer lies in one bucket.
Silver then runs one task per bucket: it reads the bucket's accepted readings, sets aside those of unknown
customers, drops exact duplicates, conforms them exactly as :func:`spanishgas.etl.silver.conform_consumption`
does, writes the bucket's part of the silver table and returns the bucket's customer-month totals
(:func:`spanishgas.etl.silver.monthly_consumption`'s columns). Spark's way needs a shuffle of every
reading by customer, which was most of silver's time.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from spanishgas.calendar import LOCAL_TZ, dst_days
from spanishgas.etl.arrow_io import lake_filesystem, s3_settings, s3_values, single_array
from spanishgas.etl.rows import GAS_KWH_PER_M3, REASON

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from spanishgas.settings import S3Settings

READING_COLUMNS = ["customer_id", "timestamp", "consumption_elec_kwh", "consumption_gas_m3"]
_BUCKET_IN_NAME = re.compile(r"-b(\d+)\.zstd\.parquet$")


# ---------------------------------------------------------------- buckets (bronze writes them)


def customer_buckets(customer_ids: pa.Array | pa.ChunkedArray, buckets: int) -> pa.Array:
    """The bucket of each customer id: CRC-32 of its UTF-8 bytes modulo ``buckets`` (a missing id: 0).

    Stable across processes and machines (Python's own string hash is not), and computed once per distinct
    id of a block (a block holds a few thousand customers and millions of readings).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = single_array(customer_ids)
    if not pa.types.is_dictionary(encoded.type):
        encoded = pc.dictionary_encode(encoded)
    per_id = pa.array([zlib.crc32(v.encode("utf-8")) % buckets for v in encoded.dictionary.to_pylist()], pa.int32())
    return pc.fill_null(pc.take(per_id, encoded.indices), 0)


def bucket_file_name(file_number: int, block_number: int, bucket: int) -> str:
    """A bronze part file's name; the bucket is its last field."""
    return f"part-{file_number:03d}-{block_number:05d}-b{bucket:03d}.zstd.parquet"


def split_by_bucket(table: pa.Table, buckets: int) -> dict[int, pa.Table]:
    """The rows of ``table`` per customer bucket (only buckets that have rows)."""
    import pyarrow.compute as pc

    # as a dictionary, the ids are hashed once each and moved as integers (the rows are reordered below)
    ids = pc.dictionary_encode(single_array(table.column("customer_id")))
    table = table.set_column(table.schema.get_field_index("customer_id"), "customer_id", ids)
    of_row = customer_buckets(ids, buckets)
    order = pc.sort_indices(of_row)
    ordered, sorted_buckets = table.take(order), pc.take(of_row, order)
    counts = pc.value_counts(sorted_buckets)
    out: dict[int, pa.Table] = {}
    offset = 0
    for item in sorted(counts.to_pylist(), key=lambda c: c["values"]):
        out[item["values"]] = ordered.slice(offset, item["counts"])
        offset += item["counts"]
    return out


def files_by_bucket(names: list[str]) -> dict[int, list[str]]:
    """Bronze part file names grouped by the bucket in their name."""
    out: dict[int, list[str]] = {}
    for name in names:
        match = _BUCKET_IN_NAME.search(name)
        if match:
            out.setdefault(int(match.group(1)), []).append(name)
    return out


# ---------------------------------------------------------------- pure Arrow transforms


def drop_exact_duplicates(readings: pa.Table) -> pa.Table:
    """Readings with exact duplicates (same customer, hour and values) dropped, sorted by customer and hour.

    The customer id comes back dictionary-encoded (Parquet writes it as plain text). Sorting makes
    duplicates neighbours. The sort is on one 64-bit number (the customer's rank, then the second of the
    reading), several times faster than on the four columns; the few readings that share a customer and
    a second (the repeated October hour, duplicates) are then ordered by their values as well, so equal
    ones meet. The table's columns are moved once, at the end.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = single_array(readings.column("customer_id"))
    if not pa.types.is_dictionary(ids.type):
        ids = pc.dictionary_encode(ids)
    readings = readings.set_column(readings.schema.get_field_index("customer_id"), "customer_id", ids)
    if readings.num_rows <= 1:
        return readings
    customer = pc.take(pc.rank(ids.dictionary, sort_keys="ascending", tiebreaker="first"), ids.indices)  # 1..n
    # whole seconds: the contract's timestamps have no fractions
    seconds = pc.divide(pc.cast(single_array(readings.column("timestamp")), pa.int64()), 1_000_000)
    low, high = pc.min_max(seconds).values()
    if high.as_py() - low.as_py() < 2**31 and len(ids.dictionary) < 2**31:
        packed = pc.add(pc.multiply(pc.cast(customer, pa.int64()), 2**31), pc.subtract(seconds, low))
        order = pa.array(np.argsort(packed.to_numpy(), kind="stable"))
        keys = {"k": pc.take(packed, order)}
    else:  # cannot pack both into 63 bits: sort on the two columns
        order = pc.sort_indices(
            pa.table({"c": customer, "t": seconds}), sort_keys=[("c", "ascending"), ("t", "ascending")]
        )
        keys = {"c": pc.take(customer, order), "t": pc.take(seconds, order)}

    def same_as_previous(column: pa.Array) -> pa.Array:
        previous, current = column.slice(0, len(column) - 1), column.slice(1)
        equal = pc.fill_null(pc.equal(previous, current), False)
        if pa.types.is_floating(column.type):  # NaN equals NaN here, as in Spark's dropDuplicates
            equal = pc.or_(equal, pc.and_(pc.is_nan(previous), pc.is_nan(current)))
        return equal

    same_key = None
    for column in keys.values():
        same = same_as_previous(column)
        same_key = same if same_key is None else pc.and_(same_key, same)
    if pc.any(same_key).as_py():
        # positions (in sorted order) in a run of equal keys: order them by their values too, drop each one
        # equal to its neighbour; everything else keeps its place
        in_run = pc.or_(
            pa.concat_arrays([same_key, pa.array([False])]), pa.concat_arrays([pa.array([False]), same_key])
        )
        positions = pc.indices_nonzero(in_run)
        rows = pc.take(order, positions)
        run = pa.table(
            {
                **{name: pc.take(column, positions) for name, column in keys.items()},
                "e": pc.take(single_array(readings.column("consumption_elec_kwh")), rows),
                "g": pc.take(single_array(readings.column("consumption_gas_m3")), rows),
                "position": positions,
            }
        )
        run = run.take(pc.sort_indices(run, sort_keys=[(n, "ascending") for n in run.column_names]))
        repeated = None
        for name in [*keys, "e", "g"]:
            same = same_as_previous(single_array(run.column(name)))
            repeated = same if repeated is None else pc.and_(repeated, same)
        dropped = pc.filter(single_array(run.column("position")).slice(1), repeated)
        keep = np.ones(len(order), dtype=bool)
        keep[dropped.to_numpy()] = False
        order = pc.filter(order, pa.array(keep))
    return readings.take(order)


def conform_readings(readings: pa.Table, holidays: list[date], years: list[int]) -> pa.Table:
    """Arrow twin of :func:`spanishgas.etl.silver.conform_consumption`: the same columns, types and rules."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from spanishgas.calendar import PEAK_HOURS, STANDARD_HOURS

    spring, autumn = dst_days(years)
    local = readings.column("timestamp").combine_chunks()
    day = pc.cast(local, pa.date32())
    hour = pc.hour(local)
    off_day = pc.or_(pc.greater_equal(pc.day_of_week(local), 5), pc.is_in(day, pa.array(holidays, pa.date32())))
    period = pc.if_else(
        off_day,
        3,
        pc.if_else(
            pc.is_in(hour, pa.array(sorted(PEAK_HOURS), pa.int64())),
            1,
            pc.if_else(pc.is_in(hour, pa.array(sorted(STANDARD_HOURS), pa.int64())), 2, 3),
        ),
    )
    # as Java resolves local times: the repeated autumn hour is the first one; a time in the missing spring
    # hour moves forward by the gap, which is the same as reading it with the winter offset (02:30 -> 01:30)
    is_two = pc.equal(hour, 2)
    in_gap = pc.and_(pc.is_in(day, pa.array(spring, pa.date32())), is_two)
    # the UTC conversion needs the missing hour of every year the readings hold, not only the flagged ones
    first, last = pc.min_max(pc.year(local)).values()
    all_years = list(range(first.as_py(), last.as_py() + 1)) if first.is_valid else []
    in_any_gap = pc.and_(pc.is_in(day, pa.array(dst_days(all_years)[0], pa.date32())), is_two)
    zoned = pc.cast(
        pc.assume_timezone(local, timezone=LOCAL_TZ, ambiguous="earliest", nonexistent="latest"),
        pa.timestamp("us", tz="UTC"),
    )
    winter = pc.cast(pc.subtract(pc.cast(local, pa.int64()), 3_600_000_000), pa.timestamp("us", tz="UTC"))
    utc = pc.if_else(in_any_gap, winter, zoned)
    elec, gas = readings.column("consumption_elec_kwh"), readings.column("consumption_gas_m3")

    def not_negative(values: pa.Array) -> pa.Array:
        # as Spark's greatest(x, 0): a NaN reading stays NaN (Arrow's max_element_wise would make it 0)
        return pc.if_else(pc.less(values, 0.0), 0.0, values)

    elec_kwh, gas_m3 = not_negative(elec), not_negative(gas)
    return pa.table(
        {
            "customer_id": readings.column("customer_id"),
            "local_ts": local,
            "utc_ts": utc,
            "tariff_period": pc.cast(period, pa.int32()),
            "elec_kwh": elec_kwh,
            "gas_m3": gas_m3,
            "gas_kwh": pc.multiply(gas_m3, GAS_KWH_PER_M3),
            "is_negative_elec": pc.cast(pc.less(elec, 0.0), pa.int32()),
            "is_negative_gas": pc.cast(pc.less(gas, 0.0), pa.int32()),
            "is_dst_gap_hour": in_gap,
            "is_dst_repeated_hour": pc.and_(pc.is_in(day, pa.array(autumn, pa.date32())), is_two),
        }
    )


MONTHLY_SCHEMA = (
    "customer_id string, month date, elec_kwh_p1 double, elec_kwh_p2 double, elec_kwh_p3 double, "
    "elec_kwh double, gas_m3 double, gas_kwh double, negative_elec_hours long, negative_gas_hours long, "
    "hours_metered long, elec_kwh_max_hour double"
)


def monthly_totals(clean: pa.Table) -> pa.Table:
    """Arrow twin of :func:`spanishgas.etl.silver.monthly_consumption` (same columns, in order)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    elec, period = clean.column("elec_kwh"), clean.column("tariff_period")
    month = pc.cast(pc.floor_temporal(clean.column("local_ts"), unit="month"), pa.date32())
    # grouped on the customer's dictionary index (an integer), which is much faster than on the text
    ids = single_array(clean.column("customer_id"))
    if not pa.types.is_dictionary(ids.type):
        ids = pc.dictionary_encode(ids)
    work = pa.table(
        {
            "customer_id": ids.indices,
            "month": month,
            "p1": pc.if_else(pc.equal(period, 1), elec, 0.0),
            "p2": pc.if_else(pc.equal(period, 2), elec, 0.0),
            "p3": pc.if_else(pc.equal(period, 3), elec, 0.0),
            "elec_kwh": elec,
            "gas_m3": clean.column("gas_m3"),
            "gas_kwh": clean.column("gas_kwh"),
            "neg_e": pc.cast(clean.column("is_negative_elec"), pa.int64()),
            "neg_g": pc.cast(clean.column("is_negative_gas"), pa.int64()),
            "nan_e": pc.cast(pc.is_nan(elec), pa.int64()),
        }
    )
    grouped = work.group_by(["customer_id", "month"], use_threads=False).aggregate(
        [
            ("p1", "sum"),
            ("p2", "sum"),
            ("p3", "sum"),
            ("elec_kwh", "sum"),
            ("gas_m3", "sum"),
            ("gas_kwh", "sum"),
            ("neg_e", "sum"),
            ("neg_g", "sum"),
            ("customer_id", "count"),
            ("elec_kwh", "max"),
            ("nan_e", "sum"),
        ]
    )
    # Spark's max of a month with a NaN reading is NaN (NaN sorts above every number); Arrow's skips it
    highest = pc.if_else(pc.greater(grouped.column("nan_e_sum"), 0), float("nan"), grouped.column("elec_kwh_max"))
    return pa.table(
        {
            "customer_id": pc.take(ids.dictionary, grouped.column("customer_id")),
            "month": grouped.column("month"),
            "elec_kwh_p1": grouped.column("p1_sum"),
            "elec_kwh_p2": grouped.column("p2_sum"),
            "elec_kwh_p3": grouped.column("p3_sum"),
            "elec_kwh": grouped.column("elec_kwh_sum"),
            "gas_m3": grouped.column("gas_m3_sum"),
            "gas_kwh": grouped.column("gas_kwh_sum"),
            "negative_elec_hours": grouped.column("neg_e_sum"),
            "negative_gas_hours": grouped.column("neg_g_sum"),
            "hours_metered": grouped.column("customer_id_count"),
            "elec_kwh_max_hour": highest,
        }
    )


# ---------------------------------------------------------------- the Spark tasks


@dataclass(frozen=True)
class BucketTask:
    """One bucket's work, in plain values Spark can ship to any executor."""

    bucket: int
    bronze_files: tuple[str, ...]  # paths on the lake's file system
    silver_uri: str  # the silver table's folder
    quarantine_uri: str  # where readings of unknown customers go, with the reason
    known_customers: tuple[str, ...]
    holidays: tuple[date, ...]
    years: tuple[int, ...]
    s3: dict[str, str] | None = None


def conform_bucket(task: BucketTask) -> dict[str, Any]:
    """Read, clean, write one bucket's readings and quarantine those of unknown customers; return the
    bucket's customer-month totals (Arrow IPC bytes) and what it counted."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    # bronze and silver are in the same lake, so one file system serves both
    filesystem, root = lake_filesystem(task.silver_uri, s3_settings(task.s3))
    parts = [
        pq.read_table(path, columns=[*READING_COLUMNS, "status"], filesystem=filesystem) for path in task.bronze_files
    ]
    if not parts:
        return {"bucket": task.bucket, "rows": 0, "monthly": b"", "unknown": 0}
    readings = pa.concat_tables(parts)
    del parts  # not held twice while the chunks are joined
    readings = readings.combine_chunks()
    accepted = pc.equal(readings.column("status"), "accepted")
    readings = readings.select(READING_COLUMNS)
    if not pc.all(accepted).as_py():  # filtering copies every column: only when something is quarantined
        readings = readings.filter(accepted)
    ids = pc.dictionary_encode(single_array(readings.column("customer_id")))
    readings = readings.set_column(0, "customer_id", ids)
    # unknown customers are looked up once per distinct id, not per reading
    unknown_ids = pc.filter(
        ids.dictionary, pc.invert(pc.is_in(ids.dictionary, value_set=pa.array(task.known_customers, pa.string())))
    )
    unknown = readings.slice(0, 0)
    if len(unknown_ids):
        is_unknown = pc.is_in(pc.take(ids.dictionary, ids.indices), value_set=unknown_ids)
        unknown, readings = readings.filter(is_unknown), readings.filter(pc.invert(is_unknown))
    clean = conform_readings(drop_exact_duplicates(readings), list(task.holidays), list(task.years))
    if clean.num_rows:
        # store_schema=False: readers see the customer id as plain text, not as the dictionary used here
        name = f"{root}/part-b{task.bucket:03d}.zstd.parquet"
        pq.write_table(clean, name, filesystem=filesystem, compression="zstd", store_schema=False)
    if unknown.num_rows:
        # quarantined where they are found: however many there are, none travels to the driver
        unknown = unknown.set_column(0, "customer_id", pc.cast(unknown.column("customer_id"), pa.string()))
        unknown = unknown.append_column(REASON, pa.array(["unknown customer"] * unknown.num_rows, pa.string()))
        _, quarantine_root = lake_filesystem(task.quarantine_uri, s3_settings(task.s3))
        filesystem.create_dir(quarantine_root, recursive=True)
        name = f"{quarantine_root}/part-b{task.bucket:03d}.zstd.parquet"
        pq.write_table(unknown, name, filesystem=filesystem, compression="zstd", store_schema=False)
    return {
        "bucket": task.bucket,
        "rows": clean.num_rows,
        "monthly": _ipc(monthly_totals(clean)),
        "unknown": unknown.num_rows,
    }


def _ipc(table: pa.Table) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _from_ipc(data: bytes) -> pa.Table:
    import pyarrow as pa

    return pa.ipc.open_stream(data).read_all()


def build_hourly(
    spark: SparkSession,
    bronze_table_uri: str,
    silver_table_uri: str,
    quarantine_uri: str,
    known_customers: list[str],
    holidays: list[date],
    years: list[int],
    s3: S3Settings | None = None,
) -> tuple[DataFrame, int]:
    """Write silver's hourly table from bronze's bucketed one, and the readings of unknown customers to
    ``quarantine_uri``; return the customer-month totals as a DataFrame and how many readings were
    quarantined."""
    import pyarrow as pa
    from pyarrow import fs as pafs

    bronze_fs, bronze_root = lake_filesystem(bronze_table_uri, s3)
    names = [info.base_name for info in bronze_fs.get_file_info(pafs.FileSelector(bronze_root)) if info.is_file]
    silver_fs, silver_root = lake_filesystem(silver_table_uri, s3)
    silver_fs.create_dir(silver_root, recursive=True)
    tasks = [
        BucketTask(
            bucket=bucket,
            bronze_files=tuple(f"{bronze_root}/{n}" for n in sorted(files)),
            silver_uri=silver_table_uri,
            quarantine_uri=quarantine_uri,
            known_customers=tuple(known_customers),
            holidays=tuple(holidays),
            years=tuple(years),
            s3=s3_values(s3),
        )
        for bucket, files in sorted(files_by_bucket(names).items())
    ]
    results = spark.sparkContext.parallelize(tasks, max(len(tasks), 1)).map(conform_bucket).collect()
    monthly_parts = [_from_ipc(r["monthly"]) for r in results if r["monthly"]]
    monthly = pa.concat_tables(monthly_parts) if monthly_parts else None
    # an Arrow table goes to Spark without a row-by-row conversion
    monthly_df = spark.createDataFrame(monthly if monthly is not None else [], MONTHLY_SCHEMA)
    return monthly_df, sum(r["unknown"] for r in results)
