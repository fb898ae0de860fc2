"""Silver transforms on small hand-built frames."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from spanishgas.calendar import dst_days, national_holidays
from spanishgas.etl import silver
from spanishgas.etl.silver import (
    classify_intent,
    conform_consumption,
    conform_customers,
    conform_prices,
    customer_month,
    dedupe_entity,
    monthly_consumption,
    split_known_readings,
    vader_compound,
)

pytestmark = pytest.mark.spark


def test_dst_days_are_the_last_sundays() -> None:
    assert dst_days([2024]) == ([dt.date(2024, 3, 31)], [dt.date(2024, 10, 27)])


def test_tariff_periods_across_weekdays_weekends_holidays_and_dst(spark) -> None:  # type: ignore[no-untyped-def]
    rows = [
        ("C1", dt.datetime(2024, 3, 28, 7), 1.0, 0.0),  # Thursday night: off-peak
        ("C1", dt.datetime(2024, 3, 28, 9), 1.0, 0.0),  # standard
        ("C1", dt.datetime(2024, 3, 28, 10), 1.0, 0.0),  # peak
        ("C1", dt.datetime(2024, 3, 28, 19), 1.0, 0.0),  # peak
        ("C1", dt.datetime(2024, 3, 28, 23), 1.0, 0.0),  # standard
        ("C1", dt.datetime(2024, 3, 29, 12), 1.0, 0.0),  # Good Friday, a national holiday: off-peak
        ("C1", dt.datetime(2024, 3, 31, 2), -0.5, -0.01),  # Sunday; 02:00 does not exist locally
        ("C1", dt.datetime(2024, 10, 27, 2), 2.0, 1.0),  # the repeated hour of October
        ("C1", dt.datetime(2024, 10, 28, 12), 1.0, 0.0),  # Monday peak
    ]
    # local time is CET (UTC+1) until 31 March and from 27 October on, CEST (UTC+2) in between
    hourly = spark.createDataFrame(
        rows, "customer_id string, timestamp timestamp_ntz, consumption_elec_kwh double, consumption_gas_m3 double"
    )
    out = conform_consumption(hourly, sorted(national_holidays([2024])), [2024]).select(
        "tariff_period",
        "elec_kwh",
        "gas_kwh",
        "is_negative_elec",
        "is_negative_gas",
        "is_dst_gap_hour",
        "is_dst_repeated_hour",
        F.date_format("utc_ts", "HH").alias("utc_hour"),
    )
    expected = spark.createDataFrame(
        [
            (3, 1.0, 0.0, 0, 0, False, False, "06"),
            (2, 1.0, 0.0, 0, 0, False, False, "08"),
            (1, 1.0, 0.0, 0, 0, False, False, "09"),
            (1, 1.0, 0.0, 0, 0, False, False, "18"),
            (2, 1.0, 0.0, 0, 0, False, False, "22"),
            (3, 1.0, 0.0, 0, 0, False, False, "11"),
            (3, 0.0, 0.0, 1, 1, True, False, "01"),
            (3, 2.0, 11.0, 0, 0, False, True, "00"),
            (1, 1.0, 0.0, 0, 0, False, False, "11"),
        ],
        "tariff_period int, elec_kwh double, gas_kwh double, is_negative_elec int, is_negative_gas int, "
        "is_dst_gap_hour boolean, is_dst_repeated_hour boolean, utc_hour string",
    )
    assertDataFrameEqual(out, expected, checkRowOrder=False)


def test_segments_and_channel_flags(spark) -> None:  # type: ignore[no-untyped-def]
    attrs = (
        spark.createDataFrame(
            [
                ("A", 4.6, 0, 0, "Presencial_Comercial "),
                ("B", 3.45, 0, 1, "unknown"),
                ("C", 10.0, 1, 0, "comparador"),
                ("D", 40.0, 1, 0, "oficina"),
            ],
            "customer_id string, contracted_power_kw double, is_industrial int, is_second_residence int, "
            "sales_channel string",
        )
        .withColumn("province_code", F.lit(28))
        .withColumn("region", F.lit("madrid"))
        .withColumn("is_high_competition_province", F.lit(1))
        .withColumn("is_urban", F.lit(1))
    )
    out = conform_customers(attrs).select(
        "customer_id",
        "segment",
        "segment_detail",
        "sales_channel",
        "is_channel_in_person",
        "is_channel_unknown",
        "is_digital_channel",
    )
    expected = spark.createDataFrame(
        [
            ("A", "residential", "residential_primary", "presencial_comercial", 1, 0, 0),
            ("B", "residential", "residential_second_home", "desconocido", 0, 1, 0),
            ("C", "sme", "sme", "comparador", 0, 0, 1),
            ("D", "corporate", "corporate", "oficina", 0, 0, 0),
        ],
        "customer_id string, segment string, segment_detail string, sales_channel string, "
        "is_channel_in_person int, is_channel_unknown int, is_digital_channel int",
    )
    assertDataFrameEqual(out, expected)


def test_price_imputation_order_and_point_in_time_variant(spark) -> None:  # type: ignore[no-untyped-def]
    d = dt.date
    rows = [
        ("A", d(2024, 1, 1), 0.0),  # leading zero: only a later month can fill it (backward)
        ("A", d(2024, 2, 1), 0.20),
        ("A", d(2024, 3, 1), 0.0),  # filled forward from February
        ("B", d(2024, 1, 1), 0.10),
        ("B", d(2024, 2, 1), 0.12),
        ("B", d(2024, 3, 1), 0.14),
        ("C", d(2024, 1, 1), 0.0),  # never priced: segment median, then national median
        ("D", d(2024, 1, 1), 0.30),
    ]
    prices = spark.createDataFrame(rows, "customer_id string, pricing_date date, variable_price_tier1_eur_kwh double")
    for col in ("variable_price_tier2_eur_kwh", "variable_price_tier3_eur_kwh", "gas_variable_price_eur_m3"):
        prices = prices.withColumn(col, F.lit(None).cast("double"))
    customers = spark.createDataFrame(
        [("A", "residential"), ("B", "residential"), ("C", "sme"), ("D", "residential")],
        "customer_id string, segment string",
    )
    out = conform_prices(prices, customers).select(
        "customer_id",
        "month",
        "variable_price_tier1_eur_kwh",
        "variable_price_tier1_eur_kwh_fill",
        "variable_price_tier1_eur_kwh_pit",
        "gas_variable_price_eur_m3",
        "any_price_imputed",
    )
    expected = spark.createDataFrame(
        [
            ("A", d(2024, 1, 1), 0.20, "customer_backward", 0.10, None, 1),
            ("A", d(2024, 2, 1), 0.20, "observed", 0.20, None, 0),
            ("A", d(2024, 3, 1), 0.20, "customer_forward", 0.20, None, 1),
            ("B", d(2024, 1, 1), 0.10, "observed", 0.10, None, 0),
            ("B", d(2024, 2, 1), 0.12, "observed", 0.12, None, 0),
            ("B", d(2024, 3, 1), 0.14, "observed", 0.14, None, 0),
            ("C", d(2024, 1, 1), 0.10, "national_month_median", 0.10, None, 1),
            ("D", d(2024, 1, 1), 0.30, "observed", 0.30, None, 0),
        ],
        "customer_id string, month date, variable_price_tier1_eur_kwh double, "
        "variable_price_tier1_eur_kwh_fill string, variable_price_tier1_eur_kwh_pit double, "
        "gas_variable_price_eur_m3 double, any_price_imputed int",
    )
    assertDataFrameEqual(out, expected, checkRowOrder=False)


def test_margins_follow_the_utility_formula(spark) -> None:  # type: ignore[no-untyped-def]
    m = dt.date(2024, 1, 1)
    monthly = spark.createDataFrame(
        [("A", m, 100.0, 100.0, 200.0, 400.0, 10.0, 110.0, 0, 0, 744, 2.0)],
        "customer_id string, month date, elec_kwh_p1 double, elec_kwh_p2 double, elec_kwh_p3 double, "
        "elec_kwh double, gas_m3 double, gas_kwh double, negative_elec_hours long, negative_gas_hours long, "
        "hours_metered long, elec_kwh_max_hour double",
    )
    prices = spark.createDataFrame(
        [("A", m, 0.20, 0.15, 0.10, 1.0, 20.0, 10.0, 60.0, 36.0, 0)],
        "customer_id string, month date, variable_price_tier1_eur_kwh_pit double, "
        "variable_price_tier2_eur_kwh_pit double, variable_price_tier3_eur_kwh_pit double, "
        "gas_variable_price_eur_m3_pit double, elec_fixed_fee_eur_month double, elec_fixed_cost_eur_month double, "
        "gas_fixed_revenue_eur_year double, gas_fixed_cost_eur_year double, any_price_imputed int",
    )
    costs = spark.createDataFrame(
        [(28, m, 0.08, 0.7, 0.02)],
        "province_code int, month date, "
        "elec_var_cost_eur_kwh double, gas_var_cost_eur_m3 double, peaje_elec_eur_kwh double",
    )
    customers = spark.createDataFrame(
        [("A", "residential", 28)], "customer_id string, segment string, province_code int"
    )
    row = customer_month(monthly, prices, costs, customers).first()
    # elec: 100*0.20 + 100*0.15 + 200*0.10 + 20 = 75 revenue; 400*(0.08+0.02) + 10 = 50 cost
    assert row["elec_revenue_eur"] == pytest.approx(75.0)
    assert row["elec_margin_eur"] == pytest.approx(25.0)
    # gas: 10*1.0 + 60/12 = 15 revenue; 10*0.7 + 36/12 = 10 cost
    assert row["gas_margin_eur"] == pytest.approx(5.0)
    assert row["margin_eur"] == pytest.approx(30.0)


def test_conflicting_duplicates_are_quarantined_exact_ones_dropped(spark) -> None:  # type: ignore[no-untyped-def]
    df = spark.createDataFrame([("A", 1), ("A", 1), ("B", 1), ("B", 2), ("C", 3)], "customer_id string, v int")
    clean, bad = dedupe_entity(df, ["customer_id"])
    assertDataFrameEqual(clean, spark.createDataFrame([("A", 1), ("C", 3)], "customer_id string, v int"))
    assert sorted(r["v"] for r in bad.collect()) == [1, 2]
    assert {r["_quarantine_reason"] for r in bad.collect()} == {"conflicting duplicate"}


@pytest.mark.parametrize("listed_limit", [5_000, 1])
def test_readings_of_unknown_customers_are_quarantined(spark, monkeypatch, listed_limit) -> None:  # type: ignore[no-untyped-def]
    # a limit of 1 with two unknown customers takes the join path; both paths give the same split
    monkeypatch.setattr(silver, "MAX_LISTED_UNKNOWN_CUSTOMERS", listed_limit)
    schema = "customer_id string, v double"
    customers = spark.createDataFrame([("A",), ("B",)], "customer_id string")
    readings = spark.createDataFrame([("A", 1.0), ("X", 2.0), ("B", 3.0), ("Y", 4.0), ("X", 5.0)], schema)
    known, unknown = split_known_readings(readings, customers)
    assertDataFrameEqual(known, spark.createDataFrame([("A", 1.0), ("B", 3.0)], schema))
    expected = [("X", 2.0, "unknown customer"), ("Y", 4.0, "unknown customer"), ("X", 5.0, "unknown customer")]
    assertDataFrameEqual(unknown, spark.createDataFrame(expected, f"{schema}, _quarantine_reason string"))


def test_readings_of_known_customers_only_pass_untouched(spark) -> None:  # type: ignore[no-untyped-def]
    customers = spark.createDataFrame([("A",), ("B",)], "customer_id string")
    readings = spark.createDataFrame([("A", 1.0), ("B", 3.0)], "customer_id string, v double")
    known, unknown = split_known_readings(readings, customers)
    assert known is readings  # no join and no filter on the large table
    assert unknown.count() == 0
    assert unknown.columns == ["customer_id", "v", "_quarantine_reason"]


def _intents(spark, notes: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    """``classify_intent`` of each note, in order."""
    frame = spark.createDataFrame([(n,) for n in notes], "t string")
    return [r["intent"] for r in frame.select(classify_intent(F.col("t")).alias("intent")).collect()]


def test_intents_follow_priority(spark) -> None:  # type: ignore[no-untyped-def]
    notes = {
        "Cust wants to cancel contract. Unhappy.": "cancellation",
        "Complaint re: estimated reading. Upset.": "complaint",
        "Inq re: last invoice.": "billing",
        "Cust asked about tariff prices.": "pricing",
        "Inq re: contract renewal.": "renewal",
        "Cust moving house. Info provided.": "other",
    }
    assert _intents(spark, list(notes)) == list(notes.values())


def test_intents_read_the_topic_not_the_feeling(spark) -> None:  # type: ignore[no-untyped-def]
    moving = "The customer explained they are moving and asked how to transfer or close the supply. They sounded upset."
    notes = {
        "Cust moving house. Annoyed, threatened to leave.": "other",
        "Inq re: contract renewal. Angry about service.": "renewal",
        moving: "other",
        "The customer asked about the latest invoice. They said the service has been poor and unfair.": "billing",
        "Cust asked about early termination fee. Info provided.": "cancellation",
        "Wants to close the account.": "cancellation",
        "Switching supplier next month.": "cancellation",
    }
    assert _intents(spark, list(notes)) == list(notes.values())


def test_generated_notes_get_the_cancellation_and_complaint_intents_exactly_when_their_topic_is(spark) -> None:  # type: ignore[no-untyped-def]
    """Every topic x tone the generator writes: the two intents the churn model leans on are found from the
    topic alone. One accepted exception: a disputed meter reading counts as a complaint (utilities file a
    reading dispute as a claim), though the generator files it under meter readings."""
    from spanishgas.generator import text

    notes = []
    for topic, short in text.SHORT_TOPIC.items():
        for tone in text.SHORT_TONE:
            notes += [(topic, f"{s} {t}") for s in short for t in text.SHORT_TONE[tone]]
            long = [f"{text.LONG_TOPIC[topic]}. {t}{e}" for t in text.LONG_TONE[tone] for e in text.LONG_EXTRA]
            notes += [(topic, note) for note in long]
    frame = spark.createDataFrame(notes, "topic string, t string").select(
        "topic", "t", classify_intent(F.col("t")).alias("intent")
    )
    # a confirmed cancellation is written after the customer left: either reading is harmless
    rows = [r for r in frame.collect() if r["topic"] != "cancellation_confirmed"]
    for intent in ("cancellation", "complaint"):
        wrong = [
            (r["topic"], r["t"])
            for r in rows
            if (r["intent"] == intent) != (r["topic"] == intent) and not r["t"].startswith("Reading dispute")
        ]
        assert not wrong, (intent, wrong[:5])


def test_monthly_consumption_splits_at_the_local_month_boundary(spark) -> None:  # type: ignore[no-untyped-def]
    rows = [
        ("C1", dt.datetime(2024, 1, 31, 23), 2.0, 0.5),  # Wednesday 23:00 local: standard, January
        ("C1", dt.datetime(2024, 2, 1, 0), 1.0, 0.0),  # Thursday 00:00 local (still January in UTC): off-peak
        ("C1", dt.datetime(2024, 2, 1, 10), 3.0, -0.2),  # peak; negative gas set to 0 and counted
    ]
    hourly = spark.createDataFrame(
        rows, "customer_id string, timestamp timestamp_ntz, consumption_elec_kwh double, consumption_gas_m3 double"
    )
    clean = conform_consumption(hourly, sorted(national_holidays([2024])), [2024])
    out = monthly_consumption(clean)
    expected = spark.createDataFrame(
        [
            ("C1", dt.date(2024, 1, 1), 0.0, 2.0, 0.0, 2.0, 0.5, 5.5, 0, 0, 1, 2.0),
            ("C1", dt.date(2024, 2, 1), 3.0, 0.0, 1.0, 4.0, 0.0, 0.0, 0, 1, 2, 3.0),
        ],
        "customer_id string, month date, elec_kwh_p1 double, elec_kwh_p2 double, elec_kwh_p3 double, "
        "elec_kwh double, gas_m3 double, gas_kwh double, negative_elec_hours long, negative_gas_hours long, "
        "hours_metered long, elec_kwh_max_hour double",
    )
    assertDataFrameEqual(out, expected, checkRowOrder=False)


@pytest.mark.unit
def test_agent_procedure_is_not_read_as_sentiment() -> None:
    import pandas as pd

    notes = pd.Series(
        [
            "No further action.",
            "The request was registered and a reference number was provided.",
            "Customer angry about the bill, threatened to leave.",
            "No, not happy with the new tariff.",
            "No good answer about the outage.",  # "no" still negates the word after it
            "The customer was happy with the help and thanked the agent.",
        ]
    )
    scores = vader_compound(notes).tolist()
    assert scores[0] == 0.0 and scores[1] == 0.0
    assert scores[2] < -0.05 and scores[3] < -0.05 and scores[4] < -0.05
    assert scores[5] > 0.05
