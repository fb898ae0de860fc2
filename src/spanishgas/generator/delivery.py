"""Write the simulated world as the utility's seven raw files, plus the ground truth beside them."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from spanishgas.calendar import national_holidays
from spanishgas.contracts import (
    CHURN_LABEL,
    COSTS_BY_PROVINCE,
    CUSTOMER_ATTRIBUTES,
    CUSTOMER_CONTRACTS,
    INTERACTION_CHANNELS,
    PRICE_HISTORY,
)
from spanishgas.generator.config import Dirtiness, GeneratorConfig
from spanishgas.generator.consumption import count_blocks_rows, write_consumption
from spanishgas.generator.observable_truth import observable_probabilities
from spanishgas.generator.text import render_summaries
from spanishgas.generator.world import (
    INTENTS,
    SEGMENTS,
    SENTIMENTS,
    STREAM_DIRT,
    STREAM_TEXT,
    World,
    rng_for,
    simulate,
    truth_probabilities,
)

ZERO_PRICE_SHARE = 0.0012
NEAR_ZERO_PRICE_SHARE = 0.0002
BLANK_ID_PRICE_SHARE = 252 / 241_188
MISSING_PRICE_MONTH_SHARE = 200 / 241_188
DUPLICATE_PRICE_SHARE = 0.0005
DUPLICATE_CONTACT_SHARE = 0.005
POST_CHURN_CONTACT_SHARE = 0.2
MALFORMED_RECORD_SHARE = 0.003
INTERACTION_CHANNEL_SHARES = (0.58, 0.16, 0.11, 0.10, 0.05)


@dataclass
class GenerationReport:
    """What a run wrote: rows, planted dirt and checksums per file, and timings."""

    out_dir: str
    truth_dir: str
    files: dict[str, dict[str, int | str]] = field(default_factory=dict)
    truth_files: list[str] = field(default_factory=list)
    customers_delivered: int = 0
    churn_rate: float = 0.0
    intercept: float = 0.0
    seconds: float = 0.0


def _fmt_dates(values: np.ndarray) -> np.ndarray:
    """ISO dates, empty string for NaT."""
    out = np.datetime_as_string(values.astype("datetime64[D]"), unit="D").astype(object)
    out[np.isnat(values)] = ""
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def delivered_customers(world: World) -> np.ndarray:
    """Indices of the customers in this delivery: supplied at some point of the emitted window."""
    cfg = world.cfg
    end = np.datetime64(cfg.end, "D")
    first = np.datetime64(cfg.first_emitted_day, "D")
    act, churn = world.population.activation, world.churn_date
    return np.flatnonzero((act <= end) & (np.isnat(churn) | (churn > first)))


def contract_snapshot(world: World, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Each customer's contract as of the delivery (or the day they left, if earlier)."""
    end = np.datetime64(world.cfg.end, "D")
    snap = np.where(np.isnat(world.churn_date[idx]), end, np.minimum(world.churn_date[idx], end))
    m = np.searchsorted(world.month_starts, snap, side="right") - 1
    renewal = world.renewal_date[idx, m]
    # a renewal earlier in the snapshot's month has already happened: take next month's state
    moved = (renewal <= snap) & ~world.is_expired[idx, m]
    m2 = np.where(moved, m + 1, m)
    return {
        "contract_start_date": world.contract_start[idx, m2],
        "next_renewal_date": world.renewal_date[idx, m2],
        "last_product_change_date": world.last_product_change[idx, m2],
    }


def write_labels_and_customers(world: World, idx: np.ndarray, out: Path) -> dict[str, dict[str, int | str]]:
    """churn_label.csv, customer_attributes.csv, customer_contracts.csv (one row per customer)."""
    pop, cfg = world.population, world.cfg
    end = np.datetime64(cfg.end, "D")
    order = rng_for(cfg.seed, STREAM_DIRT, 1).permutation(idx)  # the utility's files are not sorted
    churned = ~np.isnat(world.churn_date[order]) & (world.churn_date[order] <= end)
    labels = pd.DataFrame(
        {
            "customer_id": pop.customer_id[order],
            "churn": churned.astype(int),
            "churn_effective_date": np.where(churned, _fmt_dates(world.churn_date[order]), ""),
            "label_date": str(cfg.end),
        }
    )
    attrs = pd.DataFrame(
        {
            "customer_id": pop.customer_id[order],
            "contracted_power_kw": pop.contracted_power_kw[order],
            "is_industrial": pop.is_industrial[order],
            "is_second_residence": pop.is_second_residence[order].astype(int),
            "province_code": pop.province_code[order],
            "region": pop.region[order],
            "is_high_competition_province": pop.is_high_competition[order].astype(int),
            "is_urban": pop.is_urban[order].astype(int),
            "sales_channel": pop.sales_channel[order],
        }
    )
    snap = contract_snapshot(world, order)
    contracts = pd.DataFrame(
        {
            "customer_id": pop.customer_id[order],
            "customer_first_activation_date": _fmt_dates(pop.activation[order]),
            "contract_start_date": _fmt_dates(snap["contract_start_date"]),
            "last_product_change_date": _fmt_dates(snap["last_product_change_date"]),
            "next_renewal_date": _fmt_dates(snap["next_renewal_date"]),
        }
    )
    written = {}
    for contract, frame in ((CHURN_LABEL, labels), (CUSTOMER_ATTRIBUTES, attrs), (CUSTOMER_CONTRACTS, contracts)):
        assert list(frame.columns) == contract.column_names
        frame.to_csv(out / contract.pattern, index=False)
        written[contract.pattern] = {"rows": len(frame)}
    return written


def write_prices(world: World, out: Path) -> dict[str, int]:
    """price_history.csv: one row per customer and supplied month, with the delivery's dirt."""
    pop, cfg = world.population, world.cfg
    starts = world.month_starts[: world.n_written_months]
    ends = (starts.astype("datetime64[M]") + 1).astype("datetime64[D]")
    first = np.datetime64(cfg.first_emitted_day, "M").astype("datetime64[D]")
    churn = world.churn_date
    supplied = (
        (pop.activation[:, None] < ends[None, :])
        & (np.isnat(churn)[:, None] | (churn[:, None] > starts[None, :]))
        & (starts[None, :] >= first)
    )
    ci, mi = np.nonzero(supplied)
    rng = rng_for(cfg.seed, STREAM_DIRT, 2)
    dirty = cfg.dirtiness >= Dirtiness.AS_DELIVERED
    if dirty:
        # a few customer-months never got a price row; churners lose them more often
        is_churner = ~np.isnat(churn[ci])
        p_missing = MISSING_PRICE_MONTH_SHARE * np.where(is_churner, 2.5, 0.85)
        keep = rng.random(len(ci)) >= p_missing
        ci, mi = ci[keep], mi[keep]
    has_elec, has_gas = pop.has_elec[ci], pop.has_gas[ci]
    t1 = world.tier1_price[ci, mi]
    frame = pd.DataFrame(
        {
            "customer_id": pop.customer_id[ci],
            "pricing_date": np.datetime_as_string(starts[mi], unit="D"),
            "variable_price_tier1_eur_kwh": np.where(has_elec, t1, np.nan),
            "variable_price_tier2_eur_kwh": np.where(has_elec, np.round(t1 * pop.tier2_ratio[ci], 5), np.nan),
            "variable_price_tier3_eur_kwh": np.where(has_elec, np.round(t1 * pop.tier3_ratio[ci], 5), np.nan),
            "elec_fixed_fee_eur_month": np.where(has_elec, world.fixed_fee[ci], np.nan),
            "elec_fixed_cost_eur_month": np.where(has_elec, world.fixed_cost[ci], np.nan),
            "gas_variable_price_eur_m3": np.where(has_gas, world.gas_price[ci, mi], np.nan),
            "gas_fixed_revenue_eur_year": np.where(has_gas, world.gas_fixed_revenue[ci], np.nan),
            "gas_fixed_cost_eur_year": np.where(has_gas, world.gas_fixed_cost[ci], np.nan),
        }
    )
    counts = {"rows_clean": len(frame), "zero_prices": 0, "blank_customer_id": 0, "duplicates": 0}
    if dirty:
        price_cols = [
            "variable_price_tier1_eur_kwh",
            "variable_price_tier2_eur_kwh",
            "variable_price_tier3_eur_kwh",
            "gas_variable_price_eur_m3",
        ]
        for col in price_cols:
            present = frame[col].notna().to_numpy()
            zero = present & (rng.random(len(frame)) < ZERO_PRICE_SHARE)
            near = present & ~zero & (rng.random(len(frame)) < NEAR_ZERO_PRICE_SHARE)
            frame.loc[zero, col] = 0.0
            frame.loc[near, col] = np.round(rng.uniform(0.0001, 0.001, near.sum()), 5)
            counts["zero_prices"] += int(zero.sum())
        blanks = frame.sample(n=rng.binomial(len(frame), BLANK_ID_PRICE_SHARE), random_state=rng.integers(2**31))
        blanks = blanks.assign(customer_id="")
        dups = frame.sample(n=rng.binomial(len(frame), DUPLICATE_PRICE_SHARE), random_state=rng.integers(2**31))
        counts.update(blank_customer_id=len(blanks), duplicates=len(dups))
        frame = pd.concat([frame, blanks, dups]).sort_index(kind="stable")
    if cfg.dirtiness >= Dirtiness.HARSH:
        bad = frame.sample(n=max(1, len(frame) // 5000), random_state=rng.integers(2**31)).copy()
        bad["pricing_date"] = "2024-13-45"
        frame = pd.concat([frame, bad]).sort_index(kind="stable")
        counts["malformed"] = len(bad)
    assert list(frame.columns) == PRICE_HISTORY.column_names
    frame.to_csv(out / PRICE_HISTORY.pattern, index=False, float_format="%.6g")
    counts["rows"] = len(frame)
    return counts


def write_costs(world: World, out: Path) -> dict[str, int]:
    """costs_by_province_month.csv: every province and month of the emitted window."""
    starts = world.month_starts[: world.n_written_months]
    first = np.datetime64(world.cfg.first_emitted_day, "M").astype("datetime64[D]")
    mi = np.flatnonzero(starts >= first)
    n_p = len(world.province_codes)
    frame = pd.DataFrame(
        {
            "month": np.repeat(np.datetime_as_string(starts[mi], unit="M"), n_p),
            "province": np.tile(world.province_codes, len(mi)),
            "elec_var_cost_eur_kwh": world.elec_cost[:, mi].T.ravel(),
            "gas_var_cost_eur_m3": world.gas_cost[:, mi].T.ravel(),
            "peaje_elec_eur_kwh": world.peaje[:, mi].T.ravel(),
        }
    )
    assert list(frame.columns) == COSTS_BY_PROVINCE.column_names
    frame.to_csv(out / COSTS_BY_PROVINCE.pattern, index=False)
    return {"rows": len(frame)}


def interaction_records(world: World) -> tuple[list[dict[str, object]], pd.DataFrame, dict[str, int]]:
    """Contacts as delivered (JSON records) and their true intent and tone (for the truth folder)."""
    pop, cfg, c = world.population, world.cfg, world.contacts
    end = np.datetime64(cfg.end, "D")
    first = np.datetime64(cfg.first_emitted_day, "D")
    churn = world.churn_date[c["customer"]]
    live = (c["date"] >= pop.activation[c["customer"]]) & (np.isnat(churn) | (c["date"] < churn))
    keep = live & (c["date"] >= first) & (c["date"] <= end)
    cust, day = c["customer"][keep], c["date"][keep]
    intents = [INTENTS[i] for i in c["intent"][keep]]
    tones = [SENTIMENTS[i] for i in c["sentiment"][keep]]
    styles = c["style"][keep]

    # after leaving, a few customers still call about the final bill or to confirm the cancellation
    rng = rng_for(cfg.seed, STREAM_TEXT, 1)
    gone = np.flatnonzero(~np.isnat(world.churn_date))
    callers = gone[rng.random(len(gone)) < POST_CHURN_CONTACT_SHARE]
    post_day = world.churn_date[callers] + rng.integers(1, 30, len(callers)).astype("timedelta64[D]")
    ok = (post_day <= end) & (post_day >= first)
    callers, post_day = callers[ok], post_day[ok]
    cust = np.concatenate([cust, callers])
    day = np.concatenate([day, post_day])
    intents += list(rng.choice(["final_bill", "cancellation_confirmed"], len(callers)))
    tones += list(rng.choice(["neutral", "negative", "positive"], len(callers), p=[0.7, 0.2, 0.1]))
    styles = np.concatenate([styles, rng.integers(0, 2, len(callers))])

    text_rng = rng_for(cfg.seed, STREAM_TEXT, 2)
    summaries = render_summaries(text_rng, intents, tones, styles)
    channels = text_rng.choice(INTERACTION_CHANNELS, len(cust), p=INTERACTION_CHANNEL_SHARES)
    order = np.lexsort((pop.customer_id[cust].astype(str), day))
    ids = pop.customer_id[cust]
    day_s = np.datetime_as_string(day, unit="D")
    records: list[dict[str, object]] = [
        {"customer_id": ids[i], "date": day_s[i], "channel": channels[i], "interaction_summary": summaries[i]}
        for i in order
    ]
    truth = pd.DataFrame(
        {
            "customer_id": ids[order],
            "date": day_s[order],
            "true_intent": np.array(intents, dtype=object)[order],
            "true_sentiment": np.array(tones, dtype=object)[order],
            "style": np.where(styles[order] == 0, "short", "long"),
            "after_churn": np.isin(np.arange(len(cust)), np.arange(len(cust) - len(callers), len(cust)))[order],
        }
    )
    counts = {"records_clean": len(records), "duplicates": 0, "malformed": 0}
    dirty_rng = rng_for(cfg.seed, STREAM_DIRT, 3)
    if cfg.dirtiness >= Dirtiness.AS_DELIVERED and records:
        dup_idx = np.flatnonzero(dirty_rng.random(len(records)) < DUPLICATE_CONTACT_SHARE)
        for j in sorted(dup_idx, reverse=True):
            records.insert(int(j) + 1, dict(records[int(j)]))
        counts["duplicates"] = len(dup_idx)
    if cfg.dirtiness >= Dirtiness.HARSH and records:
        k_bad = max(1, dirty_rng.binomial(len(records), MALFORMED_RECORD_SHARE))  # at least one of each run
        bad_idx = np.sort(dirty_rng.choice(len(records), size=min(k_bad, len(records)), replace=False))
        for k, j in enumerate(bad_idx):
            rec = records[int(j)]
            if k % 3 == 0:
                rec.pop("customer_id", None)
            elif k % 3 == 1:
                rec["date"] = "yesterday"
            else:
                rec["customer_id"] = "C9999999"
        counts["malformed"] = len(bad_idx)
    counts["records"] = len(records)
    return records, truth, counts


def write_truth(world: World, idx: np.ndarray, truth_dir: Path, interaction_truth: pd.DataFrame) -> list[str]:
    """Ground truth for evaluation, outside the raw drop: planted drivers and true churn probabilities."""
    pop, cfg = world.population, world.cfg
    truth_dir.mkdir(parents=True, exist_ok=True)
    drivers = pd.DataFrame(
        {
            "customer_id": pop.customer_id[idx],
            "segment": np.array(SEGMENTS, dtype=object)[pop.segment[idx]],
            "dual_fuel": pop.dual_fuel[idx],
            "latent_dissatisfaction": pop.dissatisfaction[idx],
            "latent_churn_effect": pop.latent_churn[idx] * cfg.hazard.latent_sd,
            "elec_markup_eur_kwh": pop.elec_markup[idx],
            "churn_date": world.churn_date[idx],
        }
    )
    drivers.to_parquet(truth_dir / "customer_drivers.parquet", index=False)
    tp = truth_probabilities(world, cfg.label_horizon_days)
    c, m = tp["customer"], tp["month"]
    keep = np.isin(c, idx) & (
        world.month_starts[m] >= np.datetime64(cfg.first_emitted_day, "M").astype("datetime64[D]")
    )
    best = observable_probabilities(world, cfg.label_horizon_days, cfg.truth_replicates)
    c, m, p, p_best = c[keep], m[keep], tp["p_true"][keep], best["p_observable"][keep]
    as_of = world.month_starts[m]
    churn = world.churn_date[c]
    horizon = np.timedelta64(cfg.label_horizon_days, "D")
    asof = pd.DataFrame(
        {
            "customer_id": pop.customer_id[c],
            "as_of_date": as_of,
            "p_true": p,
            "p_observable": p_best,
            "churned_within_horizon": ~np.isnat(churn) & (churn > as_of) & (churn <= as_of + horizon),
            "horizon_complete": as_of + horizon <= np.datetime64(cfg.end, "D"),
            "hazard_this_month": world.hazard[c, m],
            **{f"driver_{k}": v[c, m] for k, v in world.drivers.items()},
        }
    )
    asof.to_parquet(truth_dir / "churn_probability_asof.parquet", index=False)
    interaction_truth.to_parquet(truth_dir / "interaction_labels.parquet", index=False)
    return ["customer_drivers.parquet", "churn_probability_asof.parquet", "interaction_labels.parquet"]


def generate(
    cfg: GeneratorConfig,
    on_progress: Callable[[str, int, int], None] | None = None,
    overwrite: bool = False,
) -> GenerationReport:
    """Simulate the world and write the seven raw files to ``cfg.out_dir`` and the truth to ``cfg.truth_dir``.

    ``on_progress(stage, done, total)`` is called as hourly rows are written (for a progress bar). An
    existing delivery in ``cfg.out_dir`` is never replaced unless ``overwrite`` is set: raw drops are
    immutable once written.
    """
    t0 = time.perf_counter()
    out, truth_dir = Path(cfg.out_dir), Path(cfg.truth_dir)
    if out.resolve() == truth_dir.resolve() or truth_dir.resolve().is_relative_to(out.resolve()):
        raise ValueError("the truth folder must lie outside the raw drop, or the pipeline could read it")
    existing = sorted(p.name for p in out.glob("*") if p.is_file()) if out.exists() else []
    if existing and not overwrite:
        raise FileExistsError(
            f"{out} already holds a delivery ({', '.join(existing[:3])}...); write to an empty folder "
            "or pass overwrite=True (--overwrite)"
        )
    out.mkdir(parents=True, exist_ok=True)
    world = simulate(cfg)
    idx = delivered_customers(world)
    report = GenerationReport(out_dir=str(out), truth_dir=str(truth_dir), intercept=world.intercept)
    report.files.update(write_labels_and_customers(world, idx, out))
    report.files[PRICE_HISTORY.pattern] = write_prices(world, out)
    report.files[COSTS_BY_PROVINCE.pattern] = write_costs(world, out)
    records, interaction_truth, counts = interaction_records(world)
    with open(out / "customer_interactions.json", "w", encoding="utf-8") as fh:
        # a JSON array with one record per line: valid JSON, and diffable
        fh.write("[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n]\n")
    report.files["customer_interactions.json"] = counts

    total_rows = count_blocks_rows(world)
    done = 0

    def tick(rows: int) -> None:
        nonlocal done
        done += rows
        if on_progress:
            on_progress("hourly consumption", done, total_rows)

    years = range(cfg.first_emitted_day.year, cfg.end.year + 1)
    holidays = national_holidays(years)
    report.files.update(write_consumption(world, out, holidays, on_block=tick))
    for name in report.files:
        report.files[name]["sha256"] = _sha256(out / name)
    report.truth_files = write_truth(world, idx, truth_dir, interaction_truth)
    end = np.datetime64(cfg.end, "D")
    report.customers_delivered = len(idx)
    report.churn_rate = float((~np.isnat(world.churn_date[idx]) & (world.churn_date[idx] <= end)).mean())
    report.seconds = round(time.perf_counter() - t0, 2)
    manifest = {"config": _config_dict(cfg), "report": asdict(report)}
    (truth_dir / "generator_manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return report


def _config_dict(cfg: GeneratorConfig) -> dict[str, object]:
    d = asdict(cfg)
    for k, v in d.items():
        if isinstance(v, date | Path):
            d[k] = str(v)
    return d


def latest_manifest(truth_dir: Path) -> Path:
    """The manifest of the newest run recorded under ``truth_dir`` (the base run or an increment)."""
    candidates = [truth_dir / "generator_manifest.json", *truth_dir.glob("increments/*/generator_manifest.json")]
    found = [p for p in candidates if p.exists()]
    if not found:
        raise FileNotFoundError(f"no generator run is recorded in {truth_dir} (generator_manifest.json)")
    return max(found, key=lambda p: json.loads(p.read_text())["config"]["end"])


def config_from_manifest(manifest: Path) -> GeneratorConfig:
    """The configuration recorded in a run's ``generator_manifest.json`` (for incremental drops)."""
    from spanishgas.generator.config import HazardCoefficients, Scenario

    raw = json.loads(manifest.read_text())["config"]
    for k in ("start", "end", "scenario_start", "emit_from"):
        raw[k] = date.fromisoformat(raw[k]) if raw.get(k) not in (None, "None") else None
    raw["out_dir"], raw["truth_dir"] = Path(raw["out_dir"]), Path(raw["truth_dir"])
    raw["dirtiness"] = Dirtiness(raw["dirtiness"])
    raw["scenario"] = Scenario(raw["scenario"])
    raw["hazard"] = HazardCoefficients(**raw["hazard"])
    return GeneratorConfig(**raw)
