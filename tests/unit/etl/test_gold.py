"""Gold: the contract as it stood on each as-of date, and no feature ever sees the future."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from spanishgas.etl.gold import (
    STATIC_ATTRIBUTES,
    as_of_dates,
    assemble_features,
    behaviour_and_sentiment_features,
    customer_grid,
    lifecycle_features,
    market_and_risk_features,
    monthly_history,
)
from spanishgas.feature_registry import feature_names

d = dt.date


@pytest.mark.unit
def test_as_of_dates_run_from_the_warmup_to_the_month_after_the_labels() -> None:
    dates = as_of_dates(d(2024, 1, 1), d(2024, 12, 31), warmup_months=3)
    assert dates[0] == d(2024, 4, 1) and dates[-1] == d(2025, 1, 1) and len(dates) == 10


@pytest.mark.spark
def test_renewal_in_force_is_the_anniversary_and_expiry_counts_only_once_past(spark) -> None:  # type: ignore[no-untyped-def]
    contracts = spark.createDataFrame(
        [
            ("A", d(2020, 6, 15), d(2025, 6, 15), None),
            ("B", d(2021, 3, 10), d(2024, 5, 10), d(2023, 3, 10)),
            ("C", d(2024, 1, 20), d(2025, 1, 20), None),
        ],
        "customer_id string, customer_first_activation_date date, next_renewal_date date, "
        "last_product_change_date date",
    )
    labels = spark.createDataFrame(
        [("A", None), ("B", None), ("C", d(2024, 3, 5))], "customer_id string, churn_effective_date date"
    )
    customers = spark.createDataFrame([(c,) for c in "ABC"], "customer_id string")
    for col in STATIC_ATTRIBUTES:
        customers = customers.withColumn(col, F.lit(0))
    customers = customers.withColumn("segment", F.lit("residential"))
    grid = customer_grid(contracts, labels, [d(2024, 3, 1), d(2024, 6, 1)])
    out = lifecycle_features(grid, customers).select(
        "customer_id",
        "as_of_date",
        F.round("months_to_renewal", 2).alias("mtr"),
        "renewal_bucket_expired",
        "renewal_bucket_3_6m",
    )
    expected = spark.createDataFrame(
        [
            ("A", d(2024, 3, 1), 3.48, 0, 1),  # next anniversary 2024-06-15, not the 2025 snapshot date
            ("A", d(2024, 6, 1), 0.46, 0, 0),
            ("B", d(2024, 3, 1), 2.30, 0, 0),  # renews 2024-05-10 ...
            ("B", d(2024, 6, 1), -0.72, 1, 0),  # ... but lapsed: expired since then
            ("C", d(2024, 3, 1), 10.68, 0, 0),  # C left on 2024-03-05: present on 1 March, gone by 1 June
        ],
        "customer_id string, as_of_date date, mtr double, renewal_bucket_expired int, renewal_bucket_3_6m int",
    )
    assertDataFrameEqual(out, expected)


@pytest.mark.spark
def test_recency_features_count_days_back_to_the_latest_contact_of_each_kind(spark) -> None:  # type: ignore[no-untyped-def]
    """When a signal leaves a window matters to the months ahead: each kind gets its own recency."""
    grid = spark.createDataFrame([("A", d(2024, 7, 1)), ("B", d(2024, 7, 1))], "customer_id string, as_of_date date")
    contacts = spark.createDataFrame(
        [
            ("A", d(2024, 6, 21), "billing", "positive"),  # 10 days
            ("A", d(2024, 5, 2), "complaint", "negative"),  # 60 days
            ("A", d(2024, 2, 2), "complaint", "neutral"),  # 150 days: an older complaint
            ("A", d(2024, 1, 3), "cancellation", "negative"),  # 180 days
            ("A", d(2024, 7, 1), "cancellation", "negative"),  # on the as-of date: not yet known
            ("B", d(2023, 7, 1), "cancellation", "negative"),  # 366 days: outside the year looked at
            ("B", d(2024, 3, 3), "renewal", "neutral"),  # 120 days
        ],
        "customer_id string, interaction_date date, intent string, sentiment_label string",
    ).select("*", F.lit(0.0).alias("sentiment_score"), F.lit(0).alias("intent_severity"))
    recency = [
        "days_since_last_contact",
        "days_since_last_complaint",
        "days_since_last_cancellation_intent",
        "days_since_last_negative_contact",
        "days_since_last_positive_contact",
    ]
    out = behaviour_and_sentiment_features(grid, contacts).select("customer_id", *recency)
    expected = spark.createDataFrame(
        [("A", 10, 60, 180, 60, 10), ("B", 120, None, None, None, None)],
        "customer_id string, " + ", ".join(f"{c} int" for c in recency),
    )
    assertDataFrameEqual(out, expected)


def _features_as_of(spark, silver: dict[str, DataFrame], day: dt.date) -> DataFrame:  # type: ignore[no-untyped-def]
    grid = customer_grid(silver["contracts"], silver["churn_labels"], [day])
    return assemble_features(
        lifecycle_features(grid, silver["customers"]),
        market_and_risk_features(grid, monthly_history(silver["customer_month"])),
        behaviour_and_sentiment_features(grid, silver["interactions"]),
    )


@pytest.mark.spark
@pytest.mark.slow
def test_features_as_of_a_date_ignore_everything_after_it(spark, small_lake) -> None:  # type: ignore[no-untyped-def]
    """Leakage test: alter or remove every record dated on or after D, and take the contract snapshot later;
    features as of D must not move."""
    tables = small_lake["silver"]["tables"]
    silver = {name: spark.read.parquet(path) for name, path in tables.items()}
    day = d(2024, 7, 1)
    before = _features_as_of(spark, silver, day)

    altered = dict(silver)
    cm = silver["customer_month"]
    future_cm = F.col("month") >= F.lit(day)
    altered["customer_month"] = cm.filter(~future_cm).unionByName(
        cm.filter(future_cm)
        .withColumn("elec_kwh", F.col("elec_kwh") * 10)
        .withColumn("margin_eur", F.lit(-999.0))
        .withColumn("variable_price_tier1_eur_kwh", F.lit(9.99))
    )
    contacts = silver["interactions"]
    altered["interactions"] = contacts.filter(F.col("interaction_date") < F.lit(day)).unionByName(
        contacts.limit(50)
        .withColumn("interaction_date", F.lit(day))
        .withColumn("intent", F.lit("cancellation"))
        .withColumn("sentiment_score", F.lit(-1.0))
    )
    labels = silver["churn_labels"]
    # churn after D is the future too: everybody still supplied on D now "leaves" the day after
    altered["churn_labels"] = labels.withColumn(
        "churn_effective_date",
        F.when(F.col("churn_effective_date") > F.lit(day), F.lit(d(2024, 7, 2))).otherwise(
            F.col("churn_effective_date")
        ),
    )
    # The contract file is a snapshot: taken later, it shows the renewals made after D (the renewal date a
    # year on) and product changes made after D (hiding any earlier one).
    contracts = silver["contracts"]
    renewal = F.col("next_renewal_date")
    altered["contracts"] = contracts.withColumn(
        "next_renewal_date", F.when(renewal > F.lit(day), F.add_months(renewal, 12)).otherwise(renewal)
    ).withColumn("last_product_change_date", F.lit(d(2024, 8, 15)))
    after = _features_as_of(spark, altered, day)
    assert before.count() > 200
    assertDataFrameEqual(before, after, checkRowOrder=False)


@pytest.mark.spark
@pytest.mark.slow
def test_gold_tables_reconcile_and_carry_every_documented_feature(spark, small_lake) -> None:  # type: ignore[no-untyped-def]
    gold = small_lake["gold"]
    features = spark.read.parquet(gold["tables"]["customer_features_asof"])
    assert set(feature_names()) <= set(features.columns)
    # recency: the days back to a contact of that kind, or 999 when none in the year looked at; never null
    # (a small delivery may hold no contact of a rare kind, such as a cancellation intent)
    for name in [n for n in feature_names() if n.startswith("days_since_last_")]:
        values = {r[0] for r in features.select(name).distinct().collect()}
        assert None not in values and 999 in values, name
        assert all(1 <= v <= 365 or v == 999 for v in values), name
    assert features.filter(F.col("days_since_last_complaint") < 999).count() > 0
    training = spark.read.parquet(gold["tables"]["churn_training_dataset"])
    assert training.count() == gold["rows"]["churn_training_dataset"]
    horizon = gold["horizon_days"]
    latest_complete = training.agg(F.max("as_of_date")).first()[0]
    assert latest_complete + dt.timedelta(days=horizon) <= d(2024, 12, 31)
    candidates = spark.read.parquet(gold["tables"]["recommendation_candidates"])
    assert candidates.select("as_of_date").distinct().count() == 1
    assert candidates.first()["as_of_date"] == d(2025, 1, 1)
    # nobody already gone on an as-of date is in that date's rows
    labels = spark.read.parquet(small_lake["silver"]["tables"]["churn_labels"])
    gone = features.join(labels, "customer_id").filter(F.col("churn_effective_date") <= F.col("as_of_date"))
    assert gone.count() == 0
    # labels agree with the ground truth the generator kept
    positives = training.agg(F.sum("label")).first()[0]
    assert 0 < positives < training.count() * 0.2
