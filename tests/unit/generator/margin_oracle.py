"""A plain-pandas oracle of the customer-month margin, used to check the generator's economics.

It follows the utility's formulae: electricity margin = sum(period kWh x period price) + fixed fee -
kWh x (energy cost + toll) - fixed cost; gas margin = m3 x (price - cost) + (fixed revenue - fixed
cost) / 12. Negative readings count as 0, as in the utility's own analysis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from spanishgas.calendar import PEAK_HOURS, STANDARD_HOURS, national_holidays


def monthly_margins(raw: Path) -> pd.DataFrame:
    """customer_id, month, segment, elec/gas/total margin for every supplied customer-month."""
    frames = []
    for path in sorted(raw.glob("consumption_hourly_*.csv")):
        hourly = pd.read_csv(path, engine="pyarrow", on_bad_lines="skip")
        frames.append(hourly)
    hourly = pd.concat(frames).drop_duplicates()
    ts = pd.to_datetime(hourly["timestamp"])
    holidays = np.array(sorted(national_holidays(ts.dt.year.unique())), dtype="datetime64[ns]")
    off = (ts.dt.weekday >= 5) | ts.dt.normalize().isin(holidays)
    hour = ts.dt.hour
    period = np.where(off, 3, np.where(hour.isin(PEAK_HOURS), 1, np.where(hour.isin(STANDARD_HOURS), 2, 3)))
    hourly = hourly.assign(
        month=ts.dt.to_period("M").dt.to_timestamp(),
        period=period,
        kwh=hourly["consumption_elec_kwh"].clip(lower=0),
        m3=hourly["consumption_gas_m3"].clip(lower=0),
    )
    kwh = hourly.pivot_table(
        index=["customer_id", "month"], columns="period", values="kwh", aggfunc="sum", fill_value=0.0
    )
    kwh.columns = [f"kwh_p{c}" for c in kwh.columns]
    gas = hourly.groupby(["customer_id", "month"])["m3"].sum()
    monthly = kwh.join(gas).reset_index()

    prices = pd.read_csv(raw / "price_history.csv").dropna(subset=["customer_id"]).drop_duplicates()
    prices["month"] = pd.to_datetime(prices["pricing_date"], errors="coerce")
    price_cols = [c for c in prices.columns if "price" in c]
    prices[price_cols] = prices[price_cols].replace(0.0, np.nan)
    prices = prices.dropna(subset=["month"]).drop_duplicates(["customer_id", "month"])
    attrs = pd.read_csv(raw / "customer_attributes.csv")
    costs = pd.read_csv(raw / "costs_by_province_month.csv")
    costs["month"] = pd.to_datetime(costs["month"] + "-01")
    df = monthly.merge(prices, on=["customer_id", "month"], how="inner").merge(attrs, on="customer_id")
    df = df.merge(costs, left_on=["province_code", "month"], right_on=["province", "month"])
    kwh_total = df[["kwh_p1", "kwh_p2", "kwh_p3"]].sum(axis=1)
    revenue = (
        df["kwh_p1"] * df["variable_price_tier1_eur_kwh"]
        + df["kwh_p2"] * df["variable_price_tier2_eur_kwh"]
        + df["kwh_p3"] * df["variable_price_tier3_eur_kwh"]
    ).fillna(0) + df["elec_fixed_fee_eur_month"].fillna(0)
    elec = (
        revenue
        - kwh_total * (df["elec_var_cost_eur_kwh"] + df["peaje_elec_eur_kwh"])
        - df["elec_fixed_cost_eur_month"].fillna(0)
    )
    gas_m = (df["m3"] * (df["gas_variable_price_eur_m3"] - df["gas_var_cost_eur_m3"])).fillna(0) + (
        (df["gas_fixed_revenue_eur_year"] - df["gas_fixed_cost_eur_year"]) / 12
    ).fillna(0)
    segment = np.where(
        df["is_industrial"] == 0, "residential", np.where(df["contracted_power_kw"] > 10, "corporate", "sme")
    )
    return pd.DataFrame(
        {
            "customer_id": df["customer_id"],
            "month": df["month"],
            "segment": segment,
            "elec_margin": elec,
            "gas_margin": gas_m,
            "total_margin": elec + gas_m,
            "kwh": kwh_total,
        }
    )
