"""The synthetic world reproduces the utility's reported statistics (docs/generator.md lists them).

Customer-level figures are checked at full scale (20,099 customers, 2024) on the simulated world, which
takes about a second; the hourly-file figures (negative readings, margins) at a moderate scale.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from spanishgas.generator import GeneratorConfig, generate
from spanishgas.generator.delivery import contract_snapshot, delivered_customers, interaction_records
from spanishgas.generator.world import World, simulate, truth_probabilities

from .margin_oracle import monthly_margins

END = np.datetime64("2024-12-31")


@pytest.fixture(scope="module")
def world() -> World:
    return simulate(GeneratorConfig(customers=20_099, start=date(2024, 1, 1), end=date(2024, 12, 31)))


@pytest.fixture(scope="module")
def delivered(world: World) -> pd.DataFrame:
    pop, idx = world.population, delivered_customers(world)
    churned = ~np.isnat(world.churn_date[idx]) & (world.churn_date[idx] <= END)
    return pd.DataFrame(
        {
            "customer_id": pop.customer_id[idx],
            "churn": churned,
            "segment": pop.segment[idx],
            "second_home": pop.is_second_residence[idx],
            "high_competition": pop.is_high_competition[idx],
            "tenure_years": (END - pop.activation[idx]).astype(int) / 365.25,
            "dual_fuel": pop.dual_fuel[idx],
            "channel": pop.sales_channel[idx],
        }
    )


@pytest.mark.unit
def test_customer_base_and_churn_rate(delivered: pd.DataFrame) -> None:
    assert len(delivered) == 20_099
    assert delivered["churn"].mean() == pytest.approx(0.0996, abs=0.006)
    assert (delivered["segment"].value_counts().sort_index().tolist()) == [18_090, 1_832, 177]
    assert delivered["second_home"].sum() == 402
    assert delivered["high_competition"].mean() == pytest.approx(0.303, abs=0.02)
    assert delivered["dual_fuel"].sum() == pytest.approx(3_602, rel=0.06)
    shares = delivered["channel"].value_counts(normalize=True)
    assert shares["presencial_comercial"] == pytest.approx(0.456, abs=0.02)
    assert shares["desconocido"] == pytest.approx(0.262, abs=0.02)


@pytest.mark.unit
def test_churn_by_driver_matches_the_utility(delivered: pd.DataFrame) -> None:
    by_comp = delivered.groupby("high_competition")["churn"].mean()
    assert by_comp[True] == pytest.approx(0.142, abs=0.015)
    assert by_comp[False] == pytest.approx(0.081, abs=0.012)
    old = delivered["tenure_years"] >= 5
    assert delivered.loc[old, "churn"].mean() == pytest.approx(0.061, abs=0.012)
    assert delivered.loc[~old, "churn"].mean() == pytest.approx(0.13, abs=0.02)
    dual = delivered.groupby("dual_fuel")["churn"].mean()
    assert dual[True] < dual[False]


@pytest.mark.unit
def test_interactions_and_their_tone(world: World, delivered: pd.DataFrame) -> None:
    records, truth, _ = interaction_records(world)
    callers = {r["customer_id"] for r in records}
    has = delivered["customer_id"].isin(callers)
    assert has.sum() == pytest.approx(6_420, rel=0.06)
    assert delivered.loc[has, "churn"].mean() == pytest.approx(0.171, abs=0.02)
    assert delivered.loc[~has, "churn"].mean() == pytest.approx(0.066, abs=0.012)
    tone = truth.loc[~truth["after_churn"], "true_sentiment"].value_counts(normalize=True)
    assert tone["positive"] == pytest.approx(0.467, abs=0.05)
    assert tone["neutral"] == pytest.approx(0.427, abs=0.05)
    assert tone["negative"] == pytest.approx(0.106, abs=0.03)
    # style does not give the tone away (the earlier synthetic data's flaw)
    short_share = truth.groupby("true_sentiment")["style"].apply(lambda s: (s == "short").mean())
    assert short_share.max() - short_share.min() < 0.08


@pytest.mark.unit
def test_contracts_and_renewal_gradient(world: World) -> None:
    idx = delivered_customers(world)
    snap = contract_snapshot(world, idx)
    active = np.isnat(world.churn_date[idx]) | (world.churn_date[idx] > END)
    expired = snap["next_renewal_date"][active] < END
    assert expired.mean() == pytest.approx(0.0289, abs=0.008)
    assert np.isnat(snap["last_product_change_date"]).mean() == pytest.approx(0.303, abs=0.04)
    # 90-day forward churn by months to renewal at monthly as-of dates (the time-aware form of the
    # utility's renewal buckets): near renewals churn most, far ones least, never deterministically
    tp = truth_probabilities(world, 90)
    c, m = tp["customer"], tp["month"]
    as_of = world.month_starts[m]
    churn = world.churn_date[c]
    label = ~np.isnat(churn) & (churn > as_of) & (churn <= as_of + np.timedelta64(90, "D"))
    mtr, exp_ = world.months_to_renewal[c, m], world.is_expired[c, m]
    rate = {
        "expired": label[exp_].mean(),
        "0-3": label[~exp_ & (mtr < 3)].mean(),
        "3-6": label[~exp_ & (mtr >= 3) & (mtr < 6)].mean(),
        "6-12": label[~exp_ & (mtr >= 6)].mean(),
    }
    assert rate["0-3"] > rate["3-6"] > rate["6-12"]
    assert rate["expired"] > rate["3-6"]
    assert rate["0-3"] >= 3.5 * rate["6-12"]
    assert rate["0-3"] < 0.25  # strong, never deterministic


@pytest.mark.unit
def test_truth_is_calibrated_against_the_labels(world: World) -> None:
    """Within each decile of true probability, the observed churn rate matches the mean truth."""
    tp = truth_probabilities(world, 90)
    c, m, p = tp["customer"], tp["month"], tp["p_true"]
    as_of = world.month_starts[m]
    complete = as_of + np.timedelta64(90, "D") <= END
    churn = world.churn_date[c]
    label = ~np.isnat(churn) & (churn > as_of) & (churn <= as_of + np.timedelta64(90, "D"))
    frame = pd.DataFrame({"p": p[complete], "y": label[complete]})
    frame["decile"] = pd.qcut(frame["p"], 10, labels=False, duplicates="drop")
    for _, g in frame.groupby("decile"):
        se = np.sqrt(g["p"].mean() * (1 - g["p"].mean()) / len(g))
        assert abs(g["y"].mean() - g["p"].mean()) < 4 * se + 0.002
    assert (frame["p"] > 0.9).mean() < 0.0005  # hardly any customer's fate is certain


@pytest.mark.unit
def test_no_single_driver_identifies_churners(world: World) -> None:
    tp = truth_probabilities(world, 90)
    c, m = tp["customer"], tp["month"]
    as_of = world.month_starts[m]
    churn = world.churn_date[c]
    label = ~np.isnat(churn) & (churn > as_of) & (churn <= as_of + np.timedelta64(90, "D"))
    for name, values in world.drivers.items():
        flag = values[c, m] > 0 if values.dtype != bool else values[c, m]
        if name in ("months_to_renewal", "tenure_months", "premium_z") or flag.sum() < 50:
            continue
        assert label[flag].mean() < 0.6, name  # strong drivers, never near-certain


@pytest.mark.unit
@pytest.mark.slow
def test_hourly_dirt_and_margins_at_moderate_scale(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("moderate")
    report = generate(
        GeneratorConfig(
            customers=1_200,
            start=date(2024, 1, 1),
            end=date(2024, 12, 31),
            out_dir=root / "raw",
            truth_dir=root / "truth",
        )
    )
    hourly = report.files["consumption_hourly_2024.csv"]
    assert int(hourly["negative_elec"]) / int(hourly["rows"]) == pytest.approx(0.0026, abs=0.0004)
    raw = root / "raw"
    readings = pd.read_csv(raw / "consumption_hourly_2024.csv", engine="pyarrow")
    assert (readings["consumption_elec_kwh"] < 0).mean() == pytest.approx(0.0026, abs=0.0004)
    assert readings.duplicated().sum() == int(hourly["duplicates"]) > 0
    prices = pd.read_csv(raw / "price_history.csv")
    blank = prices["customer_id"].isna().sum()
    assert blank == int(report.files["price_history.csv"]["blank_customer_id"])
    assert blank / len(prices) == pytest.approx(252 / 241_188, abs=0.0008)
    assert (prices["variable_price_tier1_eur_kwh"] == 0).sum() > 0

    margins = monthly_margins(raw)
    by_segment = margins.groupby("segment")["total_margin"].median()
    assert margins["total_margin"].median() == pytest.approx(7.0, abs=1.5)
    assert by_segment["residential"] == pytest.approx(7.0, abs=1.5)
    assert by_segment["sme"] == pytest.approx(11.0, abs=2.5)
    assert by_segment["corporate"] < 0
    months_per_customer = margins.groupby("customer_id")["month"].nunique()
    assert months_per_customer.max() == 12
