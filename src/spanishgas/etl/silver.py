"""Silver: one clean, conformed table per entity, plus the customer-month profit and loss.

Every function taking and returning DataFrames is pure (no I/O); :func:`build_silver` wires them to the
lake. Rows silver cannot use (unknown customers, conflicting duplicates) go to silver's quarantine with
a reason, like bronze's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from spanishgas.calendar import LOCAL_TZ, PEAK_HOURS, STANDARD_HOURS, dst_days, national_holidays
from spanishgas.etl.rows import GAS_KWH_PER_M3, MAPPED, DeliveryError
from spanishgas.lake import LayerRun, RunWriter, manifest_header

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from spanishgas.lake import Lake
    from spanishgas.settings import S3Settings

HOURLY_PARTITIONS = 64
PRICE_COLUMNS = (
    "variable_price_tier1_eur_kwh",
    "variable_price_tier2_eur_kwh",
    "variable_price_tier3_eur_kwh",
    "gas_variable_price_eur_m3",
)
CHANNEL_FLAGS = {
    "presencial_comercial": "is_channel_in_person",
    "oficina": "is_channel_office",
    "telemarketing": "is_channel_telemarketing",
    "comparador": "is_channel_comparison",
    "web_propia": "is_channel_own_web",
    "desconocido": "is_channel_unknown",
}
# Intent rules, first match wins (most severe first); words as agents write them. An intent is what the
# contact was about; how the customer felt ("angry", "poor and unfair", "threatened to leave") is the
# sentiment's to read, so feelings never make a complaint or a cancellation here. A move ("transfer or
# close the supply") is not a cancellation either: the supply often moves with the customer.
INTENT_RULES: tuple[tuple[str, str, int], ...] = (
    (
        "cancellation",
        r"cancel|terminat|end the supply|close the account|account clos|switch(ing)? (provider|supplier)",
        3,
    ),
    ("complaint", r"complain|no-show|dispute", 2),
    ("billing", r"bill|invoice|payment|direct debit|past due|debit", 1),
    ("pricing", r"price|tariff|cheaper|per kwh|offer", 1),
    ("renewal", r"renew", 1),
)
SENTIMENT_POSITIVE, SENTIMENT_NEGATIVE = 0.05, -0.05


# ---------------------------------------------------------------- customers, contracts, labels


def conform_customers(attributes: DataFrame) -> DataFrame:
    """Customers with their segment and sales-channel flags.

    Segments: residential (primary or second home) when not industrial; industrial supplies of at most
    10 kW are SMEs, larger ones corporate (the utility's rule).
    """
    from pyspark.sql import functions as F

    channel = F.lower(F.trim(F.col("sales_channel")))
    channel = F.when(channel == "unknown", F.lit("desconocido")).otherwise(channel)
    segment = (
        F.when(F.col("is_industrial") == 0, F.lit("residential"))
        .when(F.col("contracted_power_kw") <= 10, F.lit("sme"))
        .otherwise(F.lit("corporate"))
    )
    sub = F.when(
        (F.col("is_industrial") == 0) & (F.col("is_second_residence") == 1), F.lit("residential_second_home")
    ).when(F.col("is_industrial") == 0, F.lit("residential_primary"))
    out = attributes.select(
        "customer_id",
        "contracted_power_kw",
        "is_industrial",
        "is_second_residence",
        "province_code",
        "region",
        "is_high_competition_province",
        "is_urban",
        channel.alias("sales_channel"),
        segment.alias("segment"),
        F.coalesce(sub, segment).alias("segment_detail"),
    )
    for token, flag in CHANNEL_FLAGS.items():
        out = out.withColumn(flag, (F.col("sales_channel") == token).cast("int"))
    return out.withColumn("is_digital_channel", F.col("sales_channel").isin("comparador", "web_propia").cast("int"))


def dedupe_entity(df: DataFrame, key: list[str]) -> tuple[DataFrame, DataFrame]:
    """Drop exact duplicates; rows sharing a key with different values are quarantined, all of them.

    Returns (clean, quarantined with ``_quarantine_reason``).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    distinct = df.dropDuplicates()
    counted = distinct.withColumn("_n", F.count(F.lit(1)).over(Window.partitionBy(*key)))
    clean = counted.filter("_n = 1").drop("_n")
    bad = counted.filter("_n > 1").drop("_n").withColumn("_quarantine_reason", F.lit("conflicting duplicate"))
    return clean, bad


@dataclass(frozen=True)
class SnapshotDuplicates:
    """What deduplicating one snapshot file found: exact repeats dropped, key conflicts quarantined."""

    source_file: str
    key: tuple[str, ...]
    rows: int
    exact_duplicates_dropped: int
    conflicting_rows: int

    @property
    def conflicting_share(self) -> float:
        """Share of the file's accepted rows that conflict with another row on the key."""
        return self.conflicting_rows / self.rows if self.rows else 0.0

    def as_manifest(self) -> dict[str, Any]:
        """The manifest's entry for this file."""
        return {
            "source_file": self.source_file,
            "key": list(self.key),
            "rows": self.rows,
            "exact_duplicates_dropped": self.exact_duplicates_dropped,
            "conflicting_rows_quarantined": self.conflicting_rows,
            "conflicting_share": round(self.conflicting_share, 6),
        }


class ConflictingDelivery(DeliveryError):
    """Too many rows of a snapshot file conflict on its key to trust the rest of it."""


def dedupe_snapshot(
    df: DataFrame, key: list[str], source_file: str, max_conflicting_share: float
) -> tuple[DataFrame, DataFrame, SnapshotDuplicates]:
    """:func:`dedupe_entity` with its counts; past ``max_conflicting_share`` the run stops, naming the file,
    the key and the share (a delivery that far off is re-extracted, not half-used)."""
    rows = df.count()
    distinct = df.dropDuplicates().count()
    clean, bad = dedupe_entity(df, key)
    found = SnapshotDuplicates(source_file, tuple(key), rows, rows - distinct, bad.count())
    if found.conflicting_share > max_conflicting_share:
        raise ConflictingDelivery(
            f"{source_file}: {found.conflicting_rows} of {rows} rows ({found.conflicting_share:.2%}) conflict "
            f"on the key ({', '.join(key)}), above etl.max_conflicting_share ({max_conflicting_share:.2%})"
        )
    return clean, bad, found


def split_known_customers(df: DataFrame, customers: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Rows of known customers, and the rest quarantined as ``unknown customer``."""
    from pyspark.sql import functions as F

    ids = customers.select("customer_id").distinct()
    known = df.join(F.broadcast(ids), "customer_id", "left_semi")
    unknown = df.join(F.broadcast(ids), "customer_id", "left_anti").withColumn(
        "_quarantine_reason", F.lit("unknown customer")
    )
    return known, unknown


# Unknown customers' ids are listed in a filter up to this many; beyond it the readings are split by joins.
MAX_LISTED_UNKNOWN_CUSTOMERS = 5_000


def split_known_readings(readings: DataFrame, customers: DataFrame) -> tuple[DataFrame, DataFrame]:
    """``split_known_customers`` for the hourly table, without a second pass over all of it.

    The customer ids present are few (a one-column scan and a small aggregation), so the unknown ones are
    found first; readings are then split by an ``IN`` filter, which Parquet answers from row-group
    statistics. When every customer is known (the usual delivery) nothing is joined or filtered at all.
    """
    from pyspark.sql import functions as F

    known_ids = customers.select("customer_id").distinct()
    present = readings.select("customer_id").distinct()
    unknown_ids = present.join(F.broadcast(known_ids), "customer_id", "left_anti")
    listed = [r["customer_id"] for r in unknown_ids.limit(MAX_LISTED_UNKNOWN_CUSTOMERS + 1).collect()]
    if len(listed) > MAX_LISTED_UNKNOWN_CUSTOMERS:
        return split_known_customers(readings, customers)
    is_unknown = F.col("customer_id").isin(listed) if listed else F.lit(False)
    unknown = readings.filter(is_unknown).withColumn("_quarantine_reason", F.lit("unknown customer"))
    known = readings.filter(~is_unknown) if listed else readings
    return known, unknown


# ---------------------------------------------------------------- hourly consumption


def tariff_period_expr(local_ts: Column, holidays: list[date]) -> Column:
    """2.0TD period of a local wall-clock hour: 1 peak, 2 standard, 3 off-peak (weekends, holidays)."""
    from pyspark.sql import functions as F

    day = F.to_date(local_ts)
    hour = F.hour(local_ts)
    off_day = (F.dayofweek(day).isin(1, 7)) | day.isin(holidays)
    return (
        F.when(off_day, F.lit(3))
        .when(hour.isin(sorted(PEAK_HOURS)), F.lit(1))
        .when(hour.isin(sorted(STANDARD_HOURS)), F.lit(2))
        .otherwise(F.lit(3))
    )


def conform_consumption(hourly: DataFrame, holidays: list[date], years: list[int]) -> DataFrame:
    """Clean hourly readings: local and UTC time, tariff period, negatives flagged and set to 0, gas in kWh.

    The delivered clock is Spanish local time. An hour that does not exist locally (02:00-03:00 on the
    last Sunday of March) is flagged ``is_dst_gap_hour``; the repeated hour of the last Sunday of October
    is flagged ``is_dst_repeated_hour`` and both of its readings are kept (they are two real hours).
    """
    from pyspark.sql import functions as F

    spring, autumn = dst_days(years)
    local = F.col("timestamp")
    day = F.to_date(local)
    is_two = F.hour(local) == 2
    elec, gas = F.col("consumption_elec_kwh"), F.col("consumption_gas_m3")
    return hourly.select(
        "customer_id",
        local.alias("local_ts"),
        F.to_utc_timestamp(local.cast("timestamp"), LOCAL_TZ).alias("utc_ts"),
        tariff_period_expr(local, holidays).alias("tariff_period"),
        F.greatest(elec, F.lit(0.0)).alias("elec_kwh"),
        F.greatest(gas, F.lit(0.0)).alias("gas_m3"),
        (F.greatest(gas, F.lit(0.0)) * GAS_KWH_PER_M3).alias("gas_kwh"),
        (elec < 0).cast("int").alias("is_negative_elec"),
        (gas < 0).cast("int").alias("is_negative_gas"),
        (day.isin(spring) & is_two).alias("is_dst_gap_hour"),
        (day.isin(autumn) & is_two).alias("is_dst_repeated_hour"),
    )


def dedupe_readings(hourly: DataFrame) -> DataFrame:
    """Drop exact duplicate readings (same customer, local hour and values).

    Repartitioning by customer first lets the deduplication and the monthly aggregation after it share one
    shuffle of the large table.
    """
    # many small partitions keep each task's hash table in memory instead of spilling to disk
    partitions = max(int(hourly.sparkSession.conf.get("spark.sql.shuffle.partitions")), HOURLY_PARTITIONS)
    return hourly.repartition(partitions, "customer_id").dropDuplicates(
        ["customer_id", "timestamp", "consumption_elec_kwh", "consumption_gas_m3"]
    )


def monthly_consumption(clean_hourly: DataFrame) -> DataFrame:
    """Per customer and month: kWh by tariff period, gas, negative-reading counts, hours metered."""
    from pyspark.sql import functions as F

    def period(p: int) -> Column:
        return F.sum(F.when(F.col("tariff_period") == p, F.col("elec_kwh")).otherwise(0.0))

    # the month is derived here rather than stored with every reading: a narrower hourly table is the
    # cheapest part of silver to write
    month = F.trunc(F.to_date("local_ts"), "month").alias("month")
    return clean_hourly.groupBy("customer_id", month).agg(
        period(1).alias("elec_kwh_p1"),
        period(2).alias("elec_kwh_p2"),
        period(3).alias("elec_kwh_p3"),
        F.sum("elec_kwh").alias("elec_kwh"),
        F.sum("gas_m3").alias("gas_m3"),
        F.sum("gas_kwh").alias("gas_kwh"),
        F.sum("is_negative_elec").alias("negative_elec_hours"),
        F.sum("is_negative_gas").alias("negative_gas_hours"),
        F.count(F.lit(1)).alias("hours_metered"),
        F.max("elec_kwh").alias("elec_kwh_max_hour"),
    )


# ---------------------------------------------------------------- prices and costs


def conform_prices(prices: DataFrame, customers: DataFrame) -> DataFrame:
    """Monthly prices with zeros treated as missing and filled hierarchically, with a flag per column.

    Order: the customer's previous month (forward), the customer's next month (backward), the median of
    the customer's segment that month, the national median that month. ``<price>_pit`` holds a
    point-in-time-safe variant that never borrows a later month (backward fills are replaced by the
    segment median), used by the margins and gold features.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    df = prices.withColumn("month", F.trunc("pricing_date", "month")).join(
        customers.select("customer_id", "segment"), "customer_id"
    )
    base = df.columns
    # The windows are grouped by how they partition the rows (customer, segment x month, month), so each
    # grouping costs one shuffle for all four prices rather than one per price (a third of silver's
    # time for 20,000 customers went into those shuffles).
    by_customer = Window.partitionBy("customer_id").orderBy("month")
    w_all = by_customer.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    w_fwd = by_customer.rowsBetween(Window.unboundedPreceding, 0)
    w_bwd = by_customer.rowsBetween(0, Window.unboundedFollowing)
    w_seg = Window.partitionBy("segment", "month")
    w_nat = Window.partitionBy("month")
    df = df.select("*", *[F.when(F.col(c) > 0, F.col(c)).alias(f"{c}_raw") for c in PRICE_COLUMNS])
    # a customer without any electricity (gas) price all year is not supplied that commodity: not missing
    df = df.select(
        "*",
        *[(F.max(F.col(c).isNotNull().cast("int")).over(w_all) == 1).alias(f"_{c}_supplied") for c in PRICE_COLUMNS],
        *[F.last(f"{c}_raw", ignorenulls=True).over(w_fwd).alias(f"_{c}_fwd") for c in PRICE_COLUMNS],
        *[F.first(f"{c}_raw", ignorenulls=True).over(w_bwd).alias(f"_{c}_bwd") for c in PRICE_COLUMNS],
    )
    df = df.select(
        "*", *[F.percentile_approx(f"{c}_raw", 0.5, 1000).over(w_seg).alias(f"_{c}_seg") for c in PRICE_COLUMNS]
    )
    df = df.select(
        "*", *[F.percentile_approx(f"{c}_raw", 0.5, 1000).over(w_nat).alias(f"_{c}_nat") for c in PRICE_COLUMNS]
    )

    def filled(c: str) -> tuple[Column, Column, Column]:
        raw, fwd, bwd, seg, nat = (F.col(n) for n in (f"{c}_raw", f"_{c}_fwd", f"_{c}_bwd", f"_{c}_seg", f"_{c}_nat"))
        supplied = F.col(f"_{c}_supplied")
        how = (
            F.when(~supplied, F.lit(None))
            .when(raw.isNotNull(), F.lit("observed"))
            .when(fwd.isNotNull(), F.lit("customer_forward"))
            .when(bwd.isNotNull(), F.lit("customer_backward"))
            .when(seg.isNotNull(), F.lit("segment_month_median"))
            .otherwise(F.lit("national_month_median"))
        )
        value = F.when(supplied, F.coalesce(raw, fwd, bwd, seg, nat))
        pit = F.when(supplied, F.coalesce(raw, fwd, seg, nat))
        return value.alias(c), how.alias(f"{c}_fill"), pit.alias(f"{c}_pit")

    parts = {c: filled(c) for c in PRICE_COLUMNS}
    columns = [parts[c][0] if c in parts else F.col(c) for c in base]
    for c in PRICE_COLUMNS:  # the same column order as ever: <price>_raw, <price>_fill, <price>_pit
        columns += [F.col(f"{c}_raw"), parts[c][1], parts[c][2]]
    df = df.select(*columns)
    imputed = [(F.coalesce(F.col(f"{c}_fill"), F.lit("observed")) != "observed").cast("int") for c in PRICE_COLUMNS]
    return df.withColumn("any_price_imputed", F.greatest(*imputed)).drop("segment")


def conform_costs(costs: DataFrame) -> DataFrame:
    """Province costs keyed by (province_code, month)."""
    from pyspark.sql import functions as F

    return costs.select(
        F.col("province").alias("province_code"),
        F.col("month"),
        "elec_var_cost_eur_kwh",
        "gas_var_cost_eur_m3",
        "peaje_elec_eur_kwh",
    )


# ---------------------------------------------------------------- interactions


def classify_intent(summary: Column) -> Column:
    """First matching intent rule (cancellation, complaint, billing, pricing, renewal), else other."""
    from pyspark.sql import functions as F

    text = F.lower(summary)
    expr = F.lit("other")
    for intent, pattern, _ in reversed(INTENT_RULES):
        expr = F.when(text.rlike(pattern), F.lit(intent)).otherwise(expr)
    return expr


def intent_severity(intent: Column) -> Column:
    """3 cancellation, 2 complaint, 1 billing/pricing/renewal, 0 other."""
    from pyspark.sql import functions as F

    expr = F.lit(0)
    for name, _, severity in INTENT_RULES:
        expr = F.when(intent == name, F.lit(severity)).otherwise(expr)
    return expr


# Words VADER scores that are procedure, not feeling, in agents' notes: "No further action",
# "a reference number was provided". They score 0; "no" still negates the word after it.
NEUTRAL_IN_AGENT_NOTES = ("no", "number")


def agent_note_analyzer() -> Any:
    """VADER's analyzer with the lexicon adjusted for call-center notes (``NEUTRAL_IN_AGENT_NOTES``)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    for word in NEUTRAL_IN_AGENT_NOTES:
        analyzer.lexicon[word] = 0.0
    return analyzer


def vader_compound(texts: pd.Series) -> pd.Series:
    """VADER compound score per text (the lexicon ships inside the package: nothing is downloaded)."""
    analyzer = _ANALYZER.get("vader") or _ANALYZER.setdefault("vader", agent_note_analyzer())
    return pd.Series([analyzer.polarity_scores(t or "")["compound"] for t in texts], dtype="float64")


_ANALYZER: dict[str, Any] = {}


def conform_interactions(interactions: DataFrame) -> DataFrame:
    """Contacts with intent, severity and sentiment (VADER compound score and label)."""
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    sentiment = pandas_udf(vader_compound, "double")
    intent = classify_intent(F.col("interaction_summary"))
    score = sentiment(F.col("interaction_summary"))
    return (
        interactions.select(
            "customer_id",
            F.col("date").alias("interaction_date"),
            F.lower(F.trim("channel")).alias("channel"),
            "interaction_summary",
            intent.alias("intent"),
        )
        .withColumn("intent_severity", intent_severity(F.col("intent")))
        .withColumn("sentiment_score", score)
        .withColumn(
            "sentiment_label",
            F.when(F.col("sentiment_score") >= SENTIMENT_POSITIVE, F.lit("positive"))
            .when(F.col("sentiment_score") <= SENTIMENT_NEGATIVE, F.lit("negative"))
            .otherwise(F.lit("neutral")),
        )
    )


# ---------------------------------------------------------------- customer-month P&L


def customer_month(monthly: DataFrame, prices: DataFrame, costs: DataFrame, customers: DataFrame) -> DataFrame:
    """Revenue, cost and margin per commodity for every customer-month with readings or a price row.

    Electricity: revenue = sum(period kWh x period price) + fixed fee; cost = kWh x (energy cost + toll) +
    fixed cost. Gas: revenue = m3 x price + fixed revenue / 12; cost = m3 x cost + fixed cost / 12.
    Prices are the point-in-time-safe filled ones; a commodity the customer is not supplied counts 0.
    """
    from pyspark.sql import functions as F

    p = prices.select(
        "customer_id",
        "month",
        *[F.col(f"{c}_pit").alias(c) for c in PRICE_COLUMNS],
        "elec_fixed_fee_eur_month",
        "elec_fixed_cost_eur_month",
        "gas_fixed_revenue_eur_year",
        "gas_fixed_cost_eur_year",
        "any_price_imputed",
        F.lit(1).alias("has_price_row"),
    )
    c = customers.select("customer_id", "segment", "province_code")
    df = (
        monthly.join(p, ["customer_id", "month"], "full_outer")
        .join(F.broadcast(c), "customer_id")
        .join(F.broadcast(costs), ["province_code", "month"], "left")
    )
    zero = F.lit(0.0)
    kwh = F.coalesce("elec_kwh", zero)
    m3 = F.coalesce("gas_m3", zero)
    elec_rev = (
        F.coalesce("elec_kwh_p1", zero) * F.coalesce("variable_price_tier1_eur_kwh", zero)
        + F.coalesce("elec_kwh_p2", zero) * F.coalesce("variable_price_tier2_eur_kwh", zero)
        + F.coalesce("elec_kwh_p3", zero) * F.coalesce("variable_price_tier3_eur_kwh", zero)
        + F.coalesce("elec_fixed_fee_eur_month", zero)
    )
    elec_cost = kwh * (F.coalesce("elec_var_cost_eur_kwh", zero) + F.coalesce("peaje_elec_eur_kwh", zero)) + F.coalesce(
        "elec_fixed_cost_eur_month", zero
    )
    gas_rev = m3 * F.coalesce("gas_variable_price_eur_m3", zero) + F.coalesce("gas_fixed_revenue_eur_year", zero) / 12
    gas_cost = m3 * F.coalesce("gas_var_cost_eur_m3", zero) + F.coalesce("gas_fixed_cost_eur_year", zero) / 12
    return df.select(
        "customer_id",
        "month",
        "segment",
        "province_code",
        *[
            F.coalesce(x, zero).alias(x)
            for x in ("elec_kwh_p1", "elec_kwh_p2", "elec_kwh_p3", "elec_kwh", "gas_m3", "gas_kwh")
        ],
        F.coalesce("negative_elec_hours", F.lit(0)).alias("negative_elec_hours"),
        F.coalesce("negative_gas_hours", F.lit(0)).alias("negative_gas_hours"),
        F.coalesce("hours_metered", F.lit(0)).alias("hours_metered"),
        F.coalesce("elec_kwh_max_hour", zero).alias("elec_kwh_max_hour"),
        *PRICE_COLUMNS,
        "elec_var_cost_eur_kwh",
        "gas_var_cost_eur_m3",
        "peaje_elec_eur_kwh",
        F.coalesce("has_price_row", F.lit(0)).alias("has_price_row"),
        F.coalesce("any_price_imputed", F.lit(0)).alias("any_price_imputed"),
        elec_rev.alias("elec_revenue_eur"),
        elec_cost.alias("elec_cost_eur"),
        (elec_rev - elec_cost).alias("elec_margin_eur"),
        gas_rev.alias("gas_revenue_eur"),
        gas_cost.alias("gas_cost_eur"),
        (gas_rev - gas_cost).alias("gas_margin_eur"),
        (elec_rev + gas_rev).alias("revenue_eur"),
        (elec_rev - elec_cost + gas_rev - gas_cost).alias("margin_eur"),
    )


# ---------------------------------------------------------------- the run


SILVER_TABLES = (
    "customers",
    "contracts",
    "churn_labels",
    "consumption_hourly",
    "prices",
    "costs",
    "interactions",
    "customer_month",
)


def build_silver(
    spark: SparkSession,
    lake: Lake,
    bronze_run: str,
    run_id: str,
    s3: S3Settings | None = None,
    max_conflicting_share: float = 0.01,
) -> LayerRun:
    """Read a published bronze run, write every silver table under ``silver/runs/<run_id>``.

    When bronze wrote the hourly readings in customer buckets, they are cleaned one bucket per task in
    Arrow (:mod:`spanishgas.etl.hourly_buckets`); otherwise by the Spark transforms below. Same tables.
    """
    from pyspark.sql import functions as F

    started = datetime.now(UTC)

    def accepted(table: str) -> DataFrame:
        df = spark.read.parquet(lake.table_path("bronze", bronze_run, table))
        return df.filter(F.col("status") == "accepted").drop(
            "status", "_quarantine_reason", "_raw", "_source_sha256", "_ingested_at", MAPPED
        )

    bronze_manifest = lake.manifest("bronze", bronze_run)  # only published runs
    source_files = {v["table"]: name for name, v in bronze_manifest.get("files", {}).items()}
    duplicates: dict[str, dict[str, Any]] = {}

    def snapshot(table: str, key: list[str]) -> tuple[DataFrame, DataFrame]:
        clean, bad, found = dedupe_snapshot(accepted(table), key, source_files.get(table, table), max_conflicting_share)
        duplicates[table] = found.as_manifest()
        return clean, bad

    quarantine: dict[str, DataFrame] = {}
    quarantined_by_tasks: dict[str, str] = {}
    counts: dict[str, int] = {}

    writer = RunWriter(lake, "silver", run_id)
    write, tables, timings = writer.write, writer.tables, writer.seconds

    attrs, bad_attrs = snapshot("customer_attributes", ["customer_id"])
    customers = conform_customers(attrs).cache()
    quarantine["customer_attributes"] = bad_attrs
    write("customers", customers)

    contracts, bad = snapshot("customer_contracts", ["customer_id"])
    contracts, unknown = split_known_customers(contracts, customers)
    quarantine["customer_contracts"] = bad.unionByName(unknown)
    write("contracts", contracts)

    labels, bad = snapshot("churn_label", ["customer_id"])
    labels, unknown = split_known_customers(labels, customers)
    quarantine["churn_label"] = bad.unionByName(unknown)
    write("churn_labels", labels)

    costs_clean, bad = snapshot("costs_by_province_month", ["province", "month"])
    quarantine["costs_by_province_month"] = bad
    costs = conform_costs(costs_clean).cache()
    write("costs", costs)

    years = sorted({r["y"] for r in costs.select(F.year("month").alias("y")).distinct().collect()})
    holidays = sorted(national_holidays(years))

    price_rows, bad = snapshot("price_history", ["customer_id", "pricing_date"])
    price_rows, unknown = split_known_customers(price_rows, customers)
    quarantine["price_history"] = bad.unionByName(unknown)
    prices = conform_prices(price_rows, customers).cache()
    write("prices", prices)

    contacts, unknown = split_known_customers(accepted("customer_interactions").dropDuplicates(), customers)
    quarantine["customer_interactions"] = unknown
    write("interactions", conform_interactions(contacts))

    if bronze_manifest.get("customer_buckets", {}).get("consumption_hourly"):
        from spanishgas.etl.hourly_buckets import build_hourly

        t0 = time.perf_counter()
        path = lake.table_path("silver", run_id, "consumption_hourly")
        known = [r["customer_id"] for r in customers.select("customer_id").collect()]
        bronze_hourly = lake.table_path("bronze", bronze_run, "consumption_hourly")
        unknown_path = lake.path("silver", "runs", run_id, "_quarantine", "consumption_hourly")
        monthly, unknown_readings = build_hourly(spark, bronze_hourly, path, unknown_path, known, holidays, years, s3)
        monthly = monthly.cache()
        quarantined_by_tasks["consumption_hourly"] = unknown_path if unknown_readings else ""
        tables["consumption_hourly"] = path
        timings["consumption_hourly"] = round(time.perf_counter() - t0, 2)
    else:
        # only the reading itself travels through the shuffle (lineage columns would double its size)
        hourly_cols = ["customer_id", "timestamp", "consumption_elec_kwh", "consumption_gas_m3"]
        readings, unknown = split_known_readings(accepted("consumption_hourly").select(*hourly_cols), customers)
        hourly = conform_consumption(dedupe_readings(readings), holidays, years)
        write("consumption_hourly", hourly)
        monthly = monthly_consumption(spark.read.parquet(tables["consumption_hourly"]))
        quarantine["consumption_hourly"] = unknown
    write("customer_month", customer_month(monthly, prices, costs, customers))

    t0 = time.perf_counter()
    q_counts: dict[str, dict[str, int]] = {}
    for source, df in quarantine.items():
        path = lake.path("silver", "runs", run_id, "_quarantine", source)
        df.write.mode("errorifexists").parquet(path)
        rows = spark.read.parquet(path).groupBy("_quarantine_reason").count().collect()
        q_counts[source] = {r["_quarantine_reason"]: r["count"] for r in rows}
    for source, path in quarantined_by_tasks.items():  # written by the tasks that found them (or none)
        rows = spark.read.parquet(path).groupBy("_quarantine_reason").count().collect() if path else []
        q_counts[source] = {r["_quarantine_reason"]: r["count"] for r in rows}
    timings["quarantine"] = round(time.perf_counter() - t0, 2)
    for name, path in tables.items():
        counts[name] = spark.read.parquet(path).count()
    customers.unpersist()
    costs.unpersist()
    prices.unpersist()
    monthly.unpersist()
    manifest = {
        **manifest_header("silver", run_id, started, bronze_run=bronze_run),
        "rows": counts,
        "quarantined_by_reason": q_counts,
        # per snapshot file: exact repeats dropped, rows conflicting on the key quarantined
        "duplicates": duplicates,
        "seconds": timings,
        "tables": tables,
    }
    return LayerRun(run_id=run_id, manifest=manifest, tables=tables)
