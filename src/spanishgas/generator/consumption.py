"""Hourly meter readings, generated in blocks of customers x one month and written as CSV.

Each block has its own random stream (seed, month, block), so the bytes do not depend on how many worker
processes made them. Workers turn a block into CSV bytes with pyarrow; the parent writes them in order.
"""

from __future__ import annotations

import io
import multiprocessing as mp
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from spanishgas.generator.config import Dirtiness, GeneratorConfig
from spanishgas.generator.world import (
    CORPORATE,
    SME,
    STREAM_CONSUMPTION,
    World,
    month_key,
    rng_for,
)

NEGATIVE_ELEC_SHARE = 0.0026
NEGATIVE_GAS_SHARE = 0.00011
DUPLICATE_ROW_SHARE = 0.00002
MALFORMED_LINE_SHARE = 0.000005
UNKNOWN_CUSTOMER_SHARE = 0.00002

# Load profiles: 0 residential, 1 second residence, 2 SME, 3 corporate.
PROFILE_RESIDENTIAL, PROFILE_SECOND_HOME, PROFILE_SME, PROFILE_CORPORATE = 0, 1, 2, 3
_DAY_RESIDENTIAL = np.array(
    [
        0.55,
        0.45,
        0.40,
        0.38,
        0.38,
        0.42,
        0.60,
        0.95,
        1.05,
        0.90,
        0.80,
        0.80,
        0.85,
        0.95,
        1.00,
        0.85,
        0.80,
        0.90,
        1.15,
        1.45,
        1.70,
        1.80,
        1.45,
        0.95,
    ]
)
_DAY_BUSINESS = np.array(
    [
        0.30,
        0.28,
        0.28,
        0.28,
        0.30,
        0.35,
        0.55,
        1.00,
        1.60,
        1.85,
        1.90,
        1.90,
        1.85,
        1.60,
        1.55,
        1.80,
        1.85,
        1.75,
        1.35,
        0.90,
        0.60,
        0.45,
        0.38,
        0.32,
    ]
)


@dataclass(frozen=True)
class MonthHours:
    """The hours of one month as delivered: local wall-clock strings and their calendar features."""

    labels: np.ndarray  # str, "YYYY-MM-DD HH:MM:SS"
    day: np.ndarray  # datetime64[D] of each hour
    hour: np.ndarray  # 0-23
    off_day: np.ndarray  # weekend or national holiday
    day_of_year: np.ndarray


def month_hours(month_start: np.datetime64, dirtiness: Dirtiness, holidays: set[date]) -> MonthHours:
    """Every hour of the month.

    As delivered, the clock is a plain sequence of 24 hours a day, DST ignored (what the utility's file
    shows). With ``HARSH`` dirt the meter clock follows Spanish summer time: the 02:00 hour is missing on
    the last Sunday of March and repeated on the last Sunday of October.
    """
    next_month = (month_start.astype("datetime64[M]") + 1).astype("datetime64[D]")
    days = np.arange(month_start, next_month, dtype="datetime64[D]")
    day = np.repeat(days, 24)
    hour = np.tile(np.arange(24), len(days))
    if dirtiness >= Dirtiness.HARSH:
        keep = np.ones(len(day), dtype=bool)
        extra = []
        for d in days:
            py = d.astype(date)
            last_sunday = py.month in (3, 10) and py.weekday() == 6 and (py.day + 7) > _days_in_month(py)
            if last_sunday and py.month == 3:
                keep &= ~((day == d) & (hour == 2))
            elif last_sunday and py.month == 10:
                extra.append(int(np.flatnonzero((day == d) & (hour == 2))[0]))
        idx = np.flatnonzero(keep)
        idx = np.sort(np.concatenate([idx, np.array(extra, dtype=int)]), kind="stable")
        day, hour = day[idx], hour[idx]
    weekday = (day.astype("datetime64[D]").view("int64") - 4) % 7  # 1970-01-01 was a Thursday
    off = (weekday >= 5) | np.isin(day, np.array(sorted(holidays), dtype="datetime64[D]"))
    labels = np.char.add(np.char.add(day.astype(str), " "), np.char.add(np.char.zfill(hour.astype(str), 2), ":00:00"))
    doy = (day - day.astype("datetime64[Y]").astype("datetime64[D]")).astype(int)
    return MonthHours(labels=labels.astype(object), day=day, hour=hour, off_day=off, day_of_year=doy)


def _days_in_month(d: date) -> int:
    nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return (nxt - date(d.year, d.month, 1)).days


def _shapes(mh: MonthHours) -> tuple[np.ndarray, np.ndarray]:
    """Relative electricity (4 profiles x hours) and gas (hours) shapes; yearly mean about 1."""
    doy = mh.day_of_year
    winter = np.cos(2 * np.pi * (doy - 15) / 365.25)
    summer = np.maximum(np.cos(2 * np.pi * (doy - 205) / 365.25), 0) ** 2
    res = _DAY_RESIDENTIAL[mh.hour] * (1 + 0.22 * winter + 0.30 * summer) * np.where(mh.off_day, 1.12, 0.97)
    occupancy = np.where(mh.off_day, 0.9, 0.25) + 1.6 * (np.abs(doy - 220) < 20)
    second = _DAY_RESIDENTIAL[mh.hour] * occupancy * 1.3
    business_day = np.where(mh.off_day, 0.35, 1.0)
    sme = _DAY_BUSINESS[mh.hour] * business_day * (1 + 0.10 * winter + 0.18 * summer) * 1.25
    corp = (0.55 + 0.45 * _DAY_BUSINESS[mh.hour] * business_day) * (1 + 0.05 * winter + 0.12 * summer) * 1.15
    heating = np.maximum(np.cos(2 * np.pi * (doy - 20) / 365.25) + 0.3, 0) ** 1.3
    gas_day = np.where((mh.hour >= 6) & (mh.hour <= 23), 1.25, 0.45)
    gas = heating * gas_day * 1.45
    return np.vstack([res, second, sme, corp]), gas


@dataclass
class MeterPlan:
    """Per-customer inputs of the hourly generator (kept small: it is copied to every worker)."""

    customer_id: np.ndarray
    profile: np.ndarray
    elec_kwh_per_hour: np.ndarray
    gas_m3_per_hour: np.ndarray
    first_hour: np.ndarray  # datetime64[h], supply starts (activation day 00:00)
    end_hour: np.ndarray  # datetime64[h], exclusive: churn day 00:00 or the end of the delivery


def meter_plan(world: World) -> MeterPlan:
    """Consumption levels per customer: heavy-tailed, by segment and contracted power."""
    pop = world.population
    cfg = world.cfg
    rng = rng_for(cfg.seed, STREAM_CONSUMPTION, 0)
    n = len(pop)
    seg = pop.segment
    power = pop.contracted_power_kw
    res_kwh = rng.lognormal(np.log(1_050), 1.05, n) * np.sqrt(power / 4.6)
    sme_kwh = rng.lognormal(np.log(5_500), 1.1, n)
    corp_kwh = power * 8_760 * rng.lognormal(np.log(0.12), 0.6, n)
    annual_kwh = np.select([seg == SME, seg == CORPORATE], [sme_kwh, corp_kwh], res_kwh)
    annual_kwh = np.where(pop.is_second_residence, annual_kwh * 0.4, annual_kwh) * pop.has_elec
    annual_m3 = (
        np.select(
            [seg == SME, seg == CORPORATE],
            [rng.lognormal(np.log(1_500), 0.9, n), rng.lognormal(np.log(15_000), 1.0, n)],
            rng.lognormal(np.log(450), 0.8, n),
        )
        * pop.has_gas
    )
    profile = np.select(
        [seg == SME, seg == CORPORATE, pop.is_second_residence],
        [PROFILE_SME, PROFILE_CORPORATE, PROFILE_SECOND_HOME],
        PROFILE_RESIDENTIAL,
    )
    end = np.datetime64(cfg.end, "D") + np.timedelta64(1, "D")
    stop = np.where(np.isnat(world.churn_date), end, np.minimum(world.churn_date, end))
    return MeterPlan(
        customer_id=pop.customer_id,
        profile=profile,
        elec_kwh_per_hour=annual_kwh / 8_760,
        gas_m3_per_hour=annual_m3 / 8_760,
        first_hour=pop.activation.astype("datetime64[h]"),
        end_hour=stop.astype("datetime64[h]"),
    )


@dataclass(frozen=True)
class Block:
    """One unit of work: a month and a slice of customers."""

    month_start: np.datetime64
    block_index: int
    customers: np.ndarray  # indices into the plan


_STATE: dict[str, object] = {}


def _init_worker(plan: MeterPlan, cfg: GeneratorConfig, holidays: set[date]) -> None:
    _STATE["plan"] = plan
    _STATE["cfg"] = cfg
    _STATE["holidays"] = holidays
    _STATE["hours"] = {}


def _render_block(block: Block) -> tuple[bytes, int, dict[str, int]]:
    plan: MeterPlan = _STATE["plan"]  # type: ignore[assignment]
    cfg: GeneratorConfig = _STATE["cfg"]  # type: ignore[assignment]
    cache: dict[np.datetime64, tuple[MonthHours, np.ndarray, np.ndarray]] = _STATE["hours"]  # type: ignore[assignment]
    if block.month_start not in cache:
        mh = month_hours(block.month_start, cfg.dirtiness, _STATE["holidays"])  # type: ignore[arg-type]
        cache.clear()
        cache[block.month_start] = (mh, *_shapes(mh))
    mh, elec_shape, gas_shape = cache[block.month_start]
    rng = rng_for(cfg.seed, STREAM_CONSUMPTION, month_key(block.month_start), block.block_index)
    c = block.customers
    hour_ts = mh.day.astype("datetime64[h]") + mh.hour.astype("timedelta64[h]")
    first_emit = np.datetime64(cfg.first_emitted_day, "h")
    active = (hour_ts[None, :] >= np.maximum(plan.first_hour[c], first_emit)[:, None]) & (
        hour_ts[None, :] < plan.end_hour[c][:, None]
    )
    n_c, n_h = active.shape
    month_factor = rng.lognormal(0, 0.08, (n_c, 1))
    elec = plan.elec_kwh_per_hour[c][:, None] * elec_shape[plan.profile[c]] * month_factor
    elec *= rng.lognormal(-0.08, 0.4, (n_c, n_h))
    gas = plan.gas_m3_per_hour[c][:, None] * gas_shape[None, :] * month_factor
    gas *= rng.lognormal(-0.05, 0.3, (n_c, n_h))
    rows_c, rows_h = np.nonzero(active)
    elec = np.round(elec[rows_c, rows_h], 3)
    gas = np.round(gas[rows_c, rows_h], 3)
    counts = {
        "rows": len(rows_c),
        "negative_elec": 0,
        "negative_gas": 0,
        "duplicates": 0,
        "malformed": 0,
        "unknown_customer": 0,
    }
    ids = plan.customer_id[c][rows_c]
    labels = mh.labels[rows_h]
    if cfg.dirtiness >= Dirtiness.AS_DELIVERED and len(rows_c):
        neg = np.flatnonzero((rng.random(len(elec)) < NEGATIVE_ELEC_SHARE) & (plan.elec_kwh_per_hour[c][rows_c] > 0))
        elec[neg] = -np.round(np.abs(rng.normal(0.9, 0.6, len(neg))), 3) - 0.001
        has_gas = plan.gas_m3_per_hour[c][rows_c] > 0
        neg_g = np.flatnonzero((rng.random(len(gas)) < NEGATIVE_GAS_SHARE * 5.5) & has_gas)
        gas[neg_g] = -np.round(np.abs(rng.normal(0.012, 0.02, len(neg_g))), 3) - 0.001
        dup = np.flatnonzero(rng.random(len(elec)) < DUPLICATE_ROW_SHARE)
        counts.update(negative_elec=len(neg), negative_gas=len(neg_g), duplicates=len(dup))
        if len(dup):
            order = np.sort(np.concatenate([np.arange(len(elec)), dup]), kind="stable")
            ids, labels, elec, gas = ids[order], labels[order], elec[order], gas[order]
    table = pa.table(
        {
            "customer_id": ids.astype(str),
            "timestamp": labels.astype(str),
            "consumption_elec_kwh": elec,
            "consumption_gas_m3": gas,
        }
    )
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    extra = b""
    if cfg.dirtiness >= Dirtiness.HARSH and len(elec):
        k_bad = rng.binomial(len(elec), MALFORMED_LINE_SHARE)
        k_unknown = rng.binomial(len(elec), UNKNOWN_CUSTOMER_SHARE)
        bad_lines = [
            f"{ids[j]},{labels[j]},n/a\n" if i % 2 else f"{ids[j]},{labels[j]},{elec[j]},{gas[j]},extra\n"
            for i, j in enumerate(rng.integers(0, len(elec), k_bad))
        ]
        unknown = [
            f"C9{rng.integers(0, 9999):04d}9,{labels[j]},{elec[j]},{gas[j]}\n"
            for j in rng.integers(0, len(elec), k_unknown)
        ]
        extra = "".join(bad_lines + unknown).encode()
        counts.update(malformed=k_bad, unknown_customer=k_unknown)
    return buf.getvalue() + extra, block.block_index, counts


def blocks_for_year(world: World, plan: MeterPlan, year: int) -> list[Block]:
    """Blocks of ``year`` inside the emitted window."""
    cfg = world.cfg
    first = np.datetime64(cfg.first_emitted_day, "M")
    last = np.datetime64(cfg.end, "M")
    blocks = []
    ordered = np.arange(len(plan.customer_id))
    for m_start in world.month_starts[: world.n_written_months]:
        month = m_start.astype("datetime64[M]")
        if month < first or month > last or int(str(month)[:4]) != year:
            continue
        month_end_h = (month + 1).astype("datetime64[h]")
        present = ordered[(plan.first_hour < month_end_h) & (plan.end_hour > m_start.astype("datetime64[h]"))]
        for b, start in enumerate(range(0, len(present), cfg.customers_per_block)):
            blocks.append(Block(m_start, b, present[start : start + cfg.customers_per_block]))
    return blocks


def write_consumption(
    world: World,
    out_dir: Path,
    holidays: set[date],
    on_block: Callable[[int], None] | None = None,
) -> dict[str, dict[str, int]]:
    """Write ``consumption_hourly_<year>.csv`` for every year of the emitted window; return counts per file."""
    cfg = world.cfg
    plan = meter_plan(world)
    stats: dict[str, dict[str, int]] = {}
    years = range(cfg.first_emitted_day.year, cfg.end.year + 1)
    for year in years:
        blocks = blocks_for_year(world, plan, year)
        name = f"consumption_hourly_{year}.csv"
        totals: dict[str, int] = {}
        with open(out_dir / name, "wb") as fh:
            fh.write(b"customer_id,timestamp,consumption_elec_kwh,consumption_gas_m3\n")
            for payload, _, counts in _run_blocks(blocks, plan, cfg, holidays):
                fh.write(payload)
                for k, v in counts.items():
                    totals[k] = totals.get(k, 0) + v
                if on_block:
                    on_block(counts["rows"])
        stats[name] = totals
    return stats


def _run_blocks(
    blocks: list[Block], plan: MeterPlan, cfg: GeneratorConfig, holidays: set[date]
) -> Iterator[tuple[bytes, int, dict[str, int]]]:
    if cfg.workers <= 1 or len(blocks) < 2:
        _init_worker(plan, cfg, holidays)
        for b in blocks:
            yield _render_block(b)
        return
    ctx = mp.get_context("fork")
    with ctx.Pool(cfg.workers, initializer=_init_worker, initargs=(plan, cfg, holidays)) as pool:
        yield from pool.imap(_render_block, blocks, chunksize=1)


def count_blocks_rows(world: World) -> int:
    """Rows the hourly files will hold before dirt (for a progress bar)."""
    plan = meter_plan(world)
    cfg = world.cfg
    start = np.maximum(plan.first_hour, np.datetime64(cfg.first_emitted_day, "h"))
    return int(np.maximum((plan.end_hour - start).astype(int), 0).sum())
