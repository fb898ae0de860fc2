"""Gold: point-in-time features per customer and monthly as-of date, the training set and offer candidates.

Every feature of a customer as of a date uses only what was known before that date: months before the
as-of month, contacts before the as-of day, the contract as it stood that day (renewal dates are derived
from the contract's anniversary, never from a later snapshot). Features are documented in
``resources/features.yaml`` (and ``docs/features.md``). Ratios use ``try_divide``: Spark 4 runs in ANSI
mode, where dividing by zero fails the job instead of giving null.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from spanishgas.feature_registry import CONTACT_LOOKBACK_DAYS, NO_CONTACT_DAYS, feature_names
from spanishgas.lake import LayerRun, RunWriter, manifest_header

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from spanishgas.lake import Lake

DAYS_PER_MONTH = 30.4375
# The first as-of date is this many months after the first month of data.
WARMUP_MONTHS = 3
PRICE_RISE = 1.03
# Customer attributes that lifecycle features take as they are (from silver ``customers``).
STATIC_ATTRIBUTES = (
    "is_second_residence",
    "contracted_power_kw",
    "is_high_competition_province",
    "is_urban",
    "is_channel_in_person",
    "is_channel_office",
    "is_channel_telemarketing",
    "is_channel_comparison",
    "is_channel_own_web",
    "is_channel_unknown",
    "province_code",
)


def as_of_dates(first_month: date, label_date: date, warmup_months: int = WARMUP_MONTHS) -> list[date]:
    """Monthly as-of dates: from ``warmup_months`` after the first month of data to the first day after
    the label date's month (the date the latest features describe)."""
    start_index = first_month.year * 12 + first_month.month - 1 + warmup_months
    end_index = label_date.year * 12 + label_date.month  # the month after the label date
    return [date(i // 12, i % 12 + 1, 1) for i in range(start_index, end_index + 1)]


def customer_grid(contracts: DataFrame, labels: DataFrame, dates: list[date]) -> DataFrame:
    """(customer, as-of date) for customers supplied on that date: activated before it, not yet gone."""
    from pyspark.sql import functions as F

    spark = contracts.sparkSession
    asof = spark.createDataFrame([(d,) for d in dates], "as_of_date date")
    # The contract file is a snapshot taken at delivery: only fields whose value as of any earlier date
    # follows from it are read (the renewal in force is an anniversary of the delivered one). The last
    # product change does not: a later change hides an earlier one, and only survivors make later
    # changes, so a feature from it leaks who stayed (ADR 0012).
    people = contracts.select("customer_id", "customer_first_activation_date", "next_renewal_date").join(
        labels.select("customer_id", "churn_effective_date"), "customer_id", "left"
    )
    return people.crossJoin(F.broadcast(asof)).filter(
        (F.col("customer_first_activation_date") < F.col("as_of_date"))
        & (F.col("churn_effective_date").isNull() | (F.col("churn_effective_date") > F.col("as_of_date")))
    )


def lifecycle_features(grid: DataFrame, customers: DataFrame) -> DataFrame:
    """Contract and static features. The renewal in force on the as-of date is the anniversary of the
    delivered renewal date that falls on or after it; a delivered renewal date on or before it means the
    contract had already expired."""
    from pyspark.sql import functions as F

    asof, renewal = F.col("as_of_date"), F.col("next_renewal_date")
    years_ahead = F.floor(F.months_between(renewal, asof) / 12).cast("int")
    candidate = F.add_months(renewal, -12 * years_ahead)
    upcoming = F.when(candidate < asof, F.add_months(candidate, 12)).otherwise(candidate)
    expired = renewal <= asof
    mtr = F.when(expired, F.datediff(renewal, asof)).otherwise(F.datediff(upcoming, asof)) / DAYS_PER_MONTH
    tenure = F.datediff(asof, F.col("customer_first_activation_date")) / DAYS_PER_MONTH
    static = customers.select(
        "customer_id",
        "segment",
        (F.col("segment") == "sme").cast("int").alias("is_sme"),
        (F.col("segment") == "corporate").cast("int").alias("is_corporate"),
        *STATIC_ATTRIBUTES,
    )
    return grid.select(
        "customer_id",
        "as_of_date",
        mtr.alias("months_to_renewal"),
        expired.cast("int").alias("renewal_bucket_expired"),
        (~expired & (mtr < 3)).cast("int").alias("renewal_bucket_0_3m"),
        (~expired & (mtr >= 3) & (mtr < 6)).cast("int").alias("renewal_bucket_3_6m"),
        (~expired & (mtr >= 6)).cast("int").alias("renewal_bucket_6_12m"),
        tenure.alias("tenure_months"),
        (tenure < 12).cast("int").alias("tenure_under_1y"),
        (tenure >= 60).cast("int").alias("tenure_5y_plus"),
    ).join(F.broadcast(static), "customer_id")


def monthly_history(customer_month: DataFrame) -> DataFrame:
    """Customer-month rows with the month-on-month change of the peak price and the segment's median."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("customer_id").orderBy("month")
    seg = Window.partitionBy("segment", "month")
    p1 = F.col("variable_price_tier1_eur_kwh")
    return customer_month.withColumn("price_change", F.try_divide(p1, F.lag(p1).over(w))).withColumn(
        "segment_price_median", F.percentile_approx(p1, 0.5, 1000).over(seg)
    )


def market_and_risk_features(grid: DataFrame, history: DataFrame) -> DataFrame:
    """Consumption, price and margin features over the 12 completed months before each as-of date."""
    from pyspark.sql import functions as F

    joined = (
        grid.select("customer_id", "as_of_date")
        .join(history, "customer_id")
        .where((F.col("month") < F.col("as_of_date")) & (F.col("month") >= F.add_months(F.col("as_of_date"), -12)))
    )
    k = F.months_between(F.col("as_of_date"), F.col("month")).cast("int")  # 1 = the last completed month
    p1 = F.col("variable_price_tier1_eur_kwh")
    cost = F.col("elec_var_cost_eur_kwh") + F.col("peaje_elec_eur_kwh")
    priced = F.when(p1.isNotNull(), F.col("month"))

    def within(n: int, value: Column) -> Column:
        return F.when(k <= n, value)

    def at(n: int, value: Column) -> Column:
        return F.max(F.when(k == n, value))

    agg = joined.groupBy("customer_id", "as_of_date").agg(
        F.avg(within(3, F.col("elec_kwh"))).alias("elec_kwh_avg_3m"),
        F.avg("elec_kwh").alias("elec_kwh_avg_12m"),
        F.avg("gas_kwh").alias("gas_kwh_avg_12m"),
        F.try_divide(F.sum("gas_kwh"), F.sum("gas_kwh") + F.sum("elec_kwh")).alias("gas_share_12m"),
        F.try_divide(F.sum("elec_kwh_p1"), F.sum("elec_kwh")).alias("peak_share_12m"),
        F.max_by(p1, priced).alias("price_tier1_last"),
        F.max_by(F.try_divide(p1, cost) - 1, priced).alias("price_vs_cost_last"),
        F.max_by(F.try_divide(p1, F.col("segment_price_median")) - 1, priced).alias("price_vs_segment_last"),
        F.max_by(F.col("elec_var_cost_eur_kwh"), F.col("month")).alias("province_elec_cost_last"),
        (F.try_divide(at(1, p1), at(4, p1)) - 1).alias("price_trend_3m"),
        (F.try_divide(at(1, p1), at(7, p1)) - 1).alias("price_trend_6m"),
        (F.try_divide(at(1, p1), at(12, p1)) - 1).alias("price_trend_12m"),
        F.stddev_pop(within(6, p1)).alias("price_volatility_6m"),
        F.stddev_pop(p1).alias("price_volatility_12m"),
        F.sum(F.when((k <= 11) & (F.col("price_change") >= PRICE_RISE), 1).otherwise(0)).alias("price_increases_12m"),
        F.max(F.when((k <= 2) & (F.col("price_change") >= PRICE_RISE), 1).otherwise(0)).alias("_rise_recent"),
        F.sum("has_price_row").alias("price_months_12m"),
        F.try_divide(F.stddev_pop("elec_kwh"), F.avg("elec_kwh")).alias("elec_volatility_12m"),
        (
            F.try_divide(F.avg(within(3, F.col("elec_kwh"))), F.avg(F.when((k > 3) & (k <= 6), F.col("elec_kwh")))) - 1
        ).alias("elec_trend_3m"),
        F.avg(within(3, F.col("margin_eur"))).alias("margin_avg_3m"),
        F.avg("margin_eur").alias("margin_avg_12m"),
        F.stddev_pop("margin_eur").alias("margin_std_12m"),
        (F.avg(within(3, F.col("margin_eur"))) - F.avg(F.when((k > 3) & (k <= 6), F.col("margin_eur")))).alias(
            "margin_trend_3m"
        ),
        F.sum(F.when(F.col("margin_eur") < 0, 1).otherwise(0)).alias("negative_margin_months_12m"),
        F.sum(F.col("negative_elec_hours") + F.col("negative_gas_hours")).alias("negative_reading_hours_12m"),
        F.max(F.when(F.col("gas_kwh") > 0, 1).otherwise(0)).alias("is_dual_fuel_gas"),
        F.max(F.when(F.col("elec_kwh") > 0, 1).otherwise(0)).alias("_has_elec"),
        F.avg("revenue_eur").alias("revenue_avg_12m"),
    )
    # a price rise within 3 months: the last price is 3 % above the one 3 months earlier, or a monthly jump
    return (
        agg.withColumn(
            "price_increase_3m",
            F.greatest(
                F.col("_rise_recent"), F.coalesce((F.col("price_trend_3m") >= PRICE_RISE - 1).cast("int"), F.lit(0))
            ),
        )
        .withColumn("is_dual_fuel", (F.col("is_dual_fuel_gas") * F.col("_has_elec")).cast("int"))
        .drop("_rise_recent", "_has_elec", "is_dual_fuel_gas")
    )


def behaviour_and_sentiment_features(grid: DataFrame, interactions: DataFrame) -> DataFrame:
    """Contact counts, intents, timing and sentiment over the 365 days before each as-of date."""
    from pyspark.sql import functions as F

    joined = (
        grid.select("customer_id", "as_of_date")
        .join(interactions, "customer_id")
        .where(
            (F.col("interaction_date") < F.col("as_of_date"))
            & (F.col("interaction_date") >= F.date_sub(F.col("as_of_date"), CONTACT_LOOKBACK_DAYS))
        )
    )
    d = F.datediff(F.col("as_of_date"), F.col("interaction_date"))
    intent, score, label = F.col("intent"), F.col("sentiment_score"), F.col("sentiment_label")

    def count(cond: Column) -> Column:
        return F.sum(F.when(cond, 1).otherwise(0))

    return joined.groupBy("customer_id", "as_of_date").agg(
        count(d <= 30).alias("contacts_30d"),
        count(d <= 90).alias("contacts_90d"),
        count(d <= 180).alias("contacts_180d"),
        F.count(F.lit(1)).alias("contacts_365d"),
        F.min(d).alias("days_since_last_contact"),
        F.min(F.when(intent == "complaint", d)).alias("days_since_last_complaint"),
        F.min(F.when(intent == "cancellation", d)).alias("days_since_last_cancellation_intent"),
        count((d <= 90) & (intent == "complaint")).alias("complaints_90d"),
        count((d <= 180) & (intent == "complaint")).alias("complaints_180d"),
        count(intent == "complaint").alias("complaints_365d"),
        F.max(((d <= 90) & (intent == "cancellation")).cast("int")).alias("cancellation_intent_90d"),
        F.max(((d <= 180) & (intent == "cancellation")).cast("int")).alias("cancellation_intent_180d"),
        count((d <= 180) & (intent == "billing")).alias("billing_contacts_180d"),
        count((d <= 180) & (intent == "pricing")).alias("pricing_contacts_180d"),
        F.max(F.when(d <= 180, F.col("intent_severity"))).alias("max_intent_severity_180d"),
        F.avg(F.when(d <= 180, score)).alias("sentiment_mean_180d"),
        F.avg(score).alias("sentiment_mean_365d"),
        F.max_by(score, F.struct(F.col("interaction_date"), score)).alias("sentiment_last"),
        count((d <= 180) & (label == "negative")).alias("negative_contacts_180d"),
        count((d <= 180) & (label == "positive")).alias("positive_contacts_180d"),
        F.min(F.when(label == "negative", d)).alias("days_since_last_negative_contact"),
        F.min(F.when(label == "positive", d)).alias("days_since_last_positive_contact"),
        F.try_divide(count(label == "negative"), F.count(F.lit(1))).alias("negative_share_365d"),
    )


def behaviour_defaults() -> dict[str, float]:
    """Fill values for a customer without such a contact in the lookback: each recency feature
    (``days_since_last_*`` in the registry) reads "longer ago than we look"."""
    return {name: NO_CONTACT_DAYS for name in feature_names() if name.startswith("days_since_last_")}


def assemble_features(lifecycle: DataFrame, market: DataFrame, behaviour: DataFrame) -> DataFrame:
    """Join the tiers, fill what a customer without history or contacts has, add the compound crosses."""
    from pyspark.sql import functions as F

    df = lifecycle.join(market, ["customer_id", "as_of_date"], "left").join(
        behaviour, ["customer_id", "as_of_date"], "left"
    )
    recency = behaviour_defaults()
    zero_filled = [
        n for n in feature_names(("market", "risk", "behaviour", "sentiment")) if n not in recency and n in df.columns
    ]
    fills: dict[str, float] = {n: 0.0 for n in zero_filled}
    fills.update(recency)
    fills["is_dual_fuel"] = 0
    df = df.fillna(fills)
    near = F.col("renewal_bucket_0_3m") == 1
    high = F.col("is_high_competition_province") == 1
    df = df.select(
        "*",
        (near & high).cast("int").alias("near_renewal_x_high_competition"),
        (near & (F.col("price_increase_3m") == 1)).cast("int").alias("near_renewal_x_price_increase"),
        (near & (F.col("negative_contacts_180d") > 0)).cast("int").alias("near_renewal_x_negative_contact"),
        ((F.col("complaints_180d") > 0) & high).cast("int").alias("complaint_x_high_competition"),
        ((F.col("tenure_under_1y") == 1) & (F.col("is_channel_comparison") == 1))
        .cast("int")
        .alias("new_customer_x_comparison"),
        ((F.col("renewal_bucket_expired") == 1) & high).cast("int").alias("expired_x_high_competition"),
        (near & (F.col("contacts_90d") > 0)).cast("int").alias("contact_near_renewal"),
    )
    keys = ["customer_id", "as_of_date", "segment", "province_code", "revenue_avg_12m"]
    return df.select(
        *keys,
        F.col("as_of_date").cast("timestamp").alias("event_timestamp"),
        *[F.col(n).cast("double").alias(n) for n in feature_names()],
    )


def training_dataset(features: DataFrame, labels: DataFrame, horizon_days: int) -> DataFrame:
    """As-of features with a forward label: churned within ``horizon_days`` after the as-of date.

    Only as-of dates whose whole horizon lies on or before the label date are kept. When the label file
    has no churn dates (the utility's original delivery), one snapshot is built instead: the latest as-of
    date (the first day after the label date's month), labelled with ``churn``.
    """
    from pyspark.sql import functions as F

    lab = labels.select("customer_id", "churn", "churn_effective_date", "label_date")
    dated = lab.filter(F.col("churn_effective_date").isNotNull()).limit(1).count() > 0
    df = features.join(lab, "customer_id")
    if dated:
        end = F.date_add(F.col("as_of_date"), horizon_days)
        df = df.filter(end <= F.col("label_date")).withColumn(
            "label",
            (F.col("churn_effective_date").isNotNull() & (F.col("churn_effective_date") <= end)).cast("int"),
        )
    else:
        latest = df.agg(F.max("as_of_date")).first()[0]
        df = df.filter(F.col("as_of_date") == F.lit(latest)).withColumn("label", F.col("churn").cast("int"))
    return df.drop("churn", "churn_effective_date").withColumn("horizon_days", F.lit(horizon_days))


def recommendation_candidates(features: DataFrame) -> DataFrame:
    """The latest as-of features of every supplied customer, with the value fields offers need."""
    from pyspark.sql import functions as F

    from spanishgas.retention.scoring import EXPECTED_MARGIN_SOURCE

    latest = features.agg(F.max("as_of_date")).first()[0]
    return features.filter(F.col("as_of_date") == F.lit(latest)).select(
        "*",
        F.col(EXPECTED_MARGIN_SOURCE).alias("expected_monthly_margin_eur"),
        (F.col(EXPECTED_MARGIN_SOURCE) * 12).alias("expected_annual_margin_eur"),
    )


def build_gold(
    spark: SparkSession,
    lake: Lake,
    silver_run: str,
    run_id: str,
    horizon_days: int = 90,
    warmup_months: int = WARMUP_MONTHS,
) -> LayerRun:
    """Read a published silver run and write gold's tables under ``gold/runs/<run_id>``."""
    from pyspark.sql import functions as F

    started = datetime.now(UTC)
    lake.manifest("silver", silver_run)

    def silver(table: str) -> DataFrame:
        return spark.read.parquet(lake.table_path("silver", silver_run, table))

    customers, contracts, labels = silver("customers"), silver("contracts"), silver("churn_labels")
    cm = silver("customer_month")
    bounds = cm.agg(F.min("month").alias("lo")).first()
    label_date = labels.agg(F.max("label_date")).first()[0] or cm.agg(F.max("month")).first()[0]
    dates = as_of_dates(bounds["lo"], label_date, warmup_months)
    grid = customer_grid(contracts, labels, dates).cache()
    features = assemble_features(
        lifecycle_features(grid, customers),
        market_and_risk_features(grid, monthly_history(cm)),
        behaviour_and_sentiment_features(grid, silver("interactions")),
    )

    writer = RunWriter(lake, "gold", run_id)
    write, tables, timings = writer.write, writer.tables, writer.seconds

    write("customer_month", cm)
    write("customer_features_asof", features)
    written = spark.read.parquet(tables["customer_features_asof"])
    write("churn_training_dataset", training_dataset(written, labels, horizon_days))
    write("recommendation_candidates", recommendation_candidates(written))
    grid.unpersist()
    rows = {name: spark.read.parquet(path).count() for name, path in tables.items()}
    manifest = {
        **manifest_header("gold", run_id, started, silver_run=silver_run),
        "as_of_dates": [d.isoformat() for d in dates],
        "label_date": str(label_date),
        "horizon_days": horizon_days,
        "rows": rows,
        "seconds": timings,
        "tables": tables,
    }
    return LayerRun(run_id=run_id, manifest=manifest, tables=tables)
