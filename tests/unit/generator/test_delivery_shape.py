"""The generated files have exactly the delivered shapes, and the generator is deterministic."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spanishgas.contracts import RAW_FILES, ColumnType, contract_for
from spanishgas.generator import Dirtiness, GeneratorConfig, Scenario, generate

pytestmark = pytest.mark.unit


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _cfg(root: Path, **kw: object) -> GeneratorConfig:
    base = dict(
        customers=120,
        start=date(2024, 1, 1),
        end=date(2024, 3, 31),
        out_dir=root / "raw",
        truth_dir=root / "truth",
        workers=1,
    )
    base.update(kw)
    return GeneratorConfig(**base)  # type: ignore[arg-type]


def test_every_contracted_file_is_written_with_its_columns(small_delivery: tuple[Path, Path]) -> None:
    raw, _ = small_delivery
    names = sorted(p.name for p in raw.iterdir())
    assert len(names) == 7
    assert {contract_for(n).name for n in names} == {c.name for c in RAW_FILES}
    for name in names:
        contract = contract_for(name)
        if contract.format == "csv":
            header = (raw / name).open().readline().strip().split(",")
            assert header == contract.column_names, name
        else:
            records = json.loads((raw / name).read_text())
            assert all(list(r) == contract.column_names for r in records)


def test_values_follow_the_contracts(small_delivery: tuple[Path, Path]) -> None:
    raw, _ = small_delivery
    for contract in RAW_FILES:
        if contract.format == "json":
            frame = pd.DataFrame(json.loads((raw / contract.pattern).read_text()))
        else:
            path = next(raw.glob(contract.pattern))
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=200_000)
        for col in contract.columns:
            values = frame[col.name]
            present = values[values != ""]
            if not col.nullable and contract.name != "price_history":
                assert len(present) == len(values), (contract.name, col.name)
            if col.type in (ColumnType.FLOAT, ColumnType.INT, ColumnType.FLAG):
                numbers = pd.to_numeric(present)
                if col.minimum is not None:
                    assert numbers.min() >= col.minimum, (contract.name, col.name)
                if col.maximum is not None:
                    assert numbers.max() <= col.maximum, (contract.name, col.name)
            if col.type is ColumnType.DATE:
                assert pd.to_datetime(present, format="%Y-%m-%d").notna().all(), (contract.name, col.name)
            if col.type is ColumnType.MONTH:
                assert pd.to_datetime(present, format="%Y-%m").notna().all()
            if col.type is ColumnType.TIMESTAMP:
                assert pd.to_datetime(present, format="%Y-%m-%d %H:%M:%S").notna().all()
            if col.allowed:
                assert set(present.astype(type(col.allowed[0]))) <= set(col.allowed), (contract.name, col.name)
    ids = pd.read_csv(raw / "customer_attributes.csv")["customer_id"]
    assert ids.str.fullmatch(r"C\d{5}").all() and ids.is_unique


def test_same_seed_same_bytes_whatever_the_worker_count(tmp_path: Path) -> None:
    generate(_cfg(tmp_path / "a", workers=1))
    generate(_cfg(tmp_path / "b", workers=2))
    generate(_cfg(tmp_path / "c", seed=7))
    assert _digests(tmp_path / "a" / "raw") == _digests(tmp_path / "b" / "raw")
    assert _digests(tmp_path / "a" / "raw") != _digests(tmp_path / "c" / "raw")


def test_incremental_month_equals_the_same_month_of_a_longer_run(tmp_path: Path) -> None:
    """Randomness is keyed by calendar month, so continuing a run never rewrites its past."""
    generate(_cfg(tmp_path / "long", end=date(2024, 4, 30), emit_from=date(2024, 4, 1)))
    generate(_cfg(tmp_path / "inc", end=date(2024, 4, 30), emit_from=date(2024, 4, 1), workers=2))
    assert _digests(tmp_path / "long" / "raw") == _digests(tmp_path / "inc" / "raw")
    prices = pd.read_csv(tmp_path / "long" / "raw" / "price_history.csv")
    assert set(prices["pricing_date"]) == {"2024-04-01"}
    hourly = pd.read_csv(tmp_path / "long" / "raw" / "consumption_hourly_2024.csv")
    assert hourly["timestamp"].min() >= "2024-04-01" and hourly["timestamp"].max() < "2024-05-01"


def test_truth_must_live_outside_the_raw_drop(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside the raw drop"):
        generate(_cfg(tmp_path, truth_dir=tmp_path / "raw" / "truth"))


def test_churned_customers_stop_consuming_and_only_settle_their_account(small_delivery: tuple[Path, Path]) -> None:
    raw, truth = small_delivery
    labels = pd.read_csv(raw / "churn_label.csv", parse_dates=["churn_effective_date"])
    churned = labels[labels["churn"] == 1].set_index("customer_id")["churn_effective_date"]
    assert len(churned) > 5 and churned.notna().all()
    assert labels.loc[labels["churn"] == 0, "churn_effective_date"].isna().all()
    hourly = pd.read_csv(raw / "consumption_hourly_2024.csv", engine="pyarrow")
    hourly = hourly[hourly["customer_id"].isin(churned.index)]
    last_reading = pd.to_datetime(hourly.groupby("customer_id")["timestamp"].max())
    assert (last_reading < churned.reindex(last_reading.index)).all()
    contacts = pd.read_parquet(truth / "interaction_labels.parquet")
    after = contacts.merge(churned.rename("left").reset_index(), on="customer_id")
    after = after[pd.to_datetime(after["date"]) >= after["left"]]
    assert set(after["true_intent"]) <= {"final_bill", "cancellation_confirmed"}


def test_price_shock_changes_only_the_shocked_provinces_after_it_starts(tmp_path: Path) -> None:
    base = _cfg(tmp_path / "base", end=date(2024, 6, 30))
    shock = _cfg(
        tmp_path / "shock", end=date(2024, 6, 30), scenario=Scenario.PRICE_SHOCK, scenario_start=date(2024, 4, 1)
    )
    generate(base)
    generate(shock)
    a = pd.read_csv(tmp_path / "base" / "raw" / "costs_by_province_month.csv")
    b = pd.read_csv(tmp_path / "shock" / "raw" / "costs_by_province_month.csv")
    before = a["month"] < "2024-04"
    pd.testing.assert_frame_equal(a[before], b[before])
    ratio = (b.loc[~before, "elec_var_cost_eur_kwh"] / a.loc[~before, "elec_var_cost_eur_kwh"]).round(2)
    assert set(ratio) == {1.0, 1.35}


def test_harsh_dirt_plants_every_kind_of_defect(tmp_path: Path) -> None:
    generate(_cfg(tmp_path, customers=400, dirtiness=Dirtiness.HARSH))
    raw = tmp_path / "raw"
    lines = (raw / "consumption_hourly_2024.csv").read_text().splitlines()[1:]
    fields = pd.Series([line.count(",") for line in lines])
    assert (fields != 3).sum() > 0 or any(",n/a" in line for line in lines)  # malformed lines
    hourly = pd.read_csv(raw / "consumption_hourly_2024.csv", on_bad_lines="skip", engine="python")
    known = set(pd.read_csv(raw / "customer_attributes.csv")["customer_id"])
    assert (~hourly["customer_id"].isin(known)).sum() > 0  # unknown customers
    spring = hourly[hourly["timestamp"].str.startswith("2024-03-31 02:")]
    assert spring.empty  # the clock jumped from 02:00 to 03:00
    records = json.loads((raw / "customer_interactions.json").read_text())
    assert any("customer_id" not in r or r["date"] == "yesterday" for r in records)


def test_clean_delivery_has_no_dirt(tmp_path: Path) -> None:
    generate(_cfg(tmp_path, dirtiness=Dirtiness.CLEAN))
    raw = tmp_path / "raw"
    hourly = pd.read_csv(raw / "consumption_hourly_2024.csv", engine="pyarrow")
    assert (hourly[["consumption_elec_kwh", "consumption_gas_m3"]] >= 0).all().all()
    assert not hourly.duplicated().any()
    prices = pd.read_csv(raw / "price_history.csv")
    assert prices["customer_id"].notna().all() and not prices.duplicated().any()
    assert (prices["variable_price_tier1_eur_kwh"].dropna() > 0.01).all()
    per_day = pd.to_datetime(hourly["timestamp"]).dt.normalize().value_counts()
    assert np.all(per_day.to_numpy() % 24 == 0)
