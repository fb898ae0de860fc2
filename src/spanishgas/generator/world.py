"""The simulated SpanishGas world: customers, contracts, prices, costs, contacts and churn.

The world is simulated month by month from ``start`` to a few months past ``end`` (so the ground truth
of the last as-of dates has its whole label horizon). Randomness comes from streams keyed by the seed and
the calendar month, so extending ``end`` never changes what happened before it: incremental drops and
drift scenarios continue the same customers.

Churn is a monthly logistic hazard (see :class:`~spanishgas.generator.config.HazardCoefficients`) driven
only by what was observable before the month started, plus a small unobservable customer effect. The
intercept is solved so that the annual churn rate over the first year equals the configured target.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from spanishgas.generator.config import GeneratorConfig, HazardCoefficients, Scenario
from spanishgas.generator.geography import PROVINCES

DAYS_PER_MONTH = 30.4375  # months-to-renewal and tenure are in average months

# Random streams: one per purpose, keyed again by calendar month where the draw belongs to a month.
STREAM_POPULATION = 1
STREAM_ACQUISITION = 2
STREAM_CONTRACTS = 3
STREAM_PRICES = 4
STREAM_CONTACTS = 5
STREAM_CHURN = 6
STREAM_COSTS = 7
STREAM_CONSUMPTION = 8
STREAM_DIRT = 9
STREAM_TEXT = 10

SEGMENTS = ("residential", "sme", "corporate")
RESIDENTIAL, SME, CORPORATE = 0, 1, 2
SEGMENT_SHARES = (18_090 / 20_099, 1_832 / 20_099, 177 / 20_099)

# Sales channel shares per segment (from the delivery's channel x segment counts).
CHANNELS = ("presencial_comercial", "desconocido", "comparador", "oficina", "telemarketing", "web_propia")
CHANNEL_BY_SEGMENT = {
    RESIDENTIAL: (8_235, 4_744, 2_351, 1_654, 1_085, 21),
    SME: (868, 482, 167, 181, 132, 2),
    CORPORATE: (55, 41, 79, 1, 1, 0),
}
RESIDENTIAL_POWER_LADDER = np.round(np.arange(2.3, 10.36, 1.15), 2)
RESIDENTIAL_POWER_WEIGHTS = np.array([0.09, 0.16, 0.21, 0.19, 0.15, 0.10, 0.06, 0.04])
SECOND_HOME_POWER_WEIGHTS = np.array([0.30, 0.25, 0.17, 0.12, 0.08, 0.05, 0.02, 0.01])
CORPORATE_POWER = np.array(
    [15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100, 105, 110, 115, 120, 130, 140, 145, 150]
)
CORPORATE_POWER_WEIGHTS = np.array(
    [28, 10, 9, 25, 12, 6, 8, 8, 5, 4, 5, 4, 5, 8, 4, 2, 4, 3, 2, 2, 1, 3, 5, 1, 1, 12], dtype=float
)
# Tenure at the anchor date: bucket shares and day ranges (0-6 m, 6-12 m, 1-2 y, 2-5 y, 5-15 y).
TENURE_BUCKETS = ((0, 183, 1_604), (183, 365, 1_596), (365, 730, 2_963), (730, 1_826, 6_779), (1_826, 5_475, 7_157))
DUAL_FUEL_SHARE = {RESIDENTIAL: 3_272 / 18_090, SME: 284 / 1_832, CORPORATE: 76 / 177}
GAS_ONLY_SHARE = 30 / 20_099
EXPIRE_AT_RENEWAL = 0.04
PRODUCT_CHANGE_AT_RENEWAL = 0.47
PRICE_INCREASE_MONTHLY = 0.035
# a mid-contract increase raises the peak price by a uniform share in this range
PRICE_INCREASE_RANGE = (0.03, 0.10)
# spread of the markup a repriced contract gets around the customer's own (EUR/kWh)
REPRICE_NOISE_SD = 0.004
# a "recent price increase": the last billed peak price at least this factor of the one three months before
RECENT_RISE_FACTOR = 1.03
# the price-shock scenario raises peak electricity prices in the shocked provinces by this factor
PRICE_SHOCK_FACTOR = 1.20
TYPICAL_PERIOD_PRICE_FACTOR = 0.79
CONTACT_BASE_RATE = 0.026
CONTACT_PER_DISSATISFACTION = 0.6  # log contact rate per unit of latent dissatisfaction
# A contact's tone is TONE_PER_DISSATISFACTION * dissatisfaction + TONE_PER_PRICE_RISE * rise + N(0, 1);
# above NEGATIVE_TONE it is negative, below POSITIVE_TONE positive.
TONE_PER_DISSATISFACTION = 0.8
TONE_PER_PRICE_RISE = 0.5
NEGATIVE_TONE = 2.3
POSITIVE_TONE = 0.62
RENEWAL_TALK_NEAR_RENEWAL = 0.25
PRICING_TALK_AFTER_PRICE_RISE = 0.20

INTENTS = (
    "cancellation",
    "complaint",
    "billing",
    "pricing",
    "renewal",
    "plan",
    "account",
    "outage",
    "meter_reading",
    "moving",
    "direct_debit",
)
SENTIMENTS = ("negative", "neutral", "positive")
# Intent probabilities given sentiment (rows follow SENTIMENTS, columns INTENTS).
INTENT_GIVEN_SENTIMENT = np.array(
    [
        [0.14, 0.42, 0.12, 0.12, 0.06, 0.01, 0.02, 0.06, 0.02, 0.01, 0.02],
        [0.03, 0.05, 0.15, 0.10, 0.24, 0.09, 0.08, 0.05, 0.08, 0.06, 0.07],
        [0.00, 0.01, 0.12, 0.07, 0.30, 0.15, 0.12, 0.02, 0.07, 0.07, 0.07],
    ]
)


def rng_for(seed: int, stream: int, *keys: int) -> np.random.Generator:
    """An independent random stream for (seed, purpose, keys)."""
    return np.random.default_rng(np.random.SeedSequence([seed, stream, *keys]))


def month_key(d: np.datetime64 | date) -> int:
    """200401-style integer key of a month."""
    d64 = np.datetime64(d, "M")
    y = d64.astype(int) // 12 + 1970
    return int(y * 100 + d64.astype(int) % 12 + 1)


def add_years(d: np.ndarray, years: int | np.ndarray) -> np.ndarray:
    """Same day ``years`` later (29 Feb becomes 28 Feb), vectorized over datetime64[D]."""
    months = d.astype("datetime64[M]")
    day = (d - months.astype("datetime64[D]")).astype(int)
    target = months + 12 * np.asarray(years)
    last_day = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(int) - 1
    return target.astype("datetime64[D]") + np.minimum(day, last_day)


def anniversaries_until(activation: np.ndarray, day: np.datetime64) -> np.ndarray:
    """How many contract anniversaries (activation + k years, k >= 1) fall on or before ``day``."""
    k = day.astype("datetime64[Y]").astype(int) - activation.astype("datetime64[Y]").astype(int)
    k = np.where(add_years(activation, k) > day, k - 1, k)
    return np.maximum(k, 0)


@dataclass
class Population:
    """Static facts about every customer the world ever has (base customers, then acquisitions)."""

    customer_id: np.ndarray  # str
    segment: np.ndarray  # 0 residential, 1 SME, 2 corporate
    contracted_power_kw: np.ndarray
    is_second_residence: np.ndarray
    province_code: np.ndarray
    region: np.ndarray
    is_high_competition: np.ndarray
    is_urban: np.ndarray
    sales_channel: np.ndarray
    has_elec: np.ndarray
    has_gas: np.ndarray
    activation: np.ndarray  # datetime64[D]
    dissatisfaction: np.ndarray  # latent, drives contacts and their tone
    latent_churn: np.ndarray  # latent, enters the hazard directly, never observable
    elec_markup: np.ndarray  # EUR/kWh over cost + toll
    gas_markup: np.ndarray  # EUR/m3 over cost
    tier2_ratio: np.ndarray
    tier3_ratio: np.ndarray
    pre_window_product_change_lag: np.ndarray  # renewals back from the window start, -1 = never

    def __len__(self) -> int:
        return len(self.customer_id)

    @property
    def is_industrial(self) -> np.ndarray:
        """SME and corporate supplies."""
        return (self.segment != RESIDENTIAL).astype(np.int8)

    @property
    def dual_fuel(self) -> np.ndarray:
        """Customers supplied both electricity and gas."""
        return self.has_elec & self.has_gas


def _draw_customers(
    rng: np.random.Generator, n: int, activation: np.ndarray, channel_shares: dict[int, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Draw ``n`` customers' static attributes."""
    # exact segment mix (as delivered), in random order
    counts = np.round(np.array(SEGMENT_SHARES) * n).astype(int)
    counts[0] = n - counts[1:].sum()
    segment = rng.permutation(np.repeat(np.arange(3), counts))
    residential = np.flatnonzero(segment == RESIDENTIAL)
    second = np.zeros(n, dtype=bool)
    second[rng.choice(residential, size=round(len(residential) * 402 / 18_090), replace=False)] = True
    power = np.where(
        second,
        rng.choice(RESIDENTIAL_POWER_LADDER, size=n, p=SECOND_HOME_POWER_WEIGHTS / SECOND_HOME_POWER_WEIGHTS.sum()),
        rng.choice(RESIDENTIAL_POWER_LADDER, size=n, p=RESIDENTIAL_POWER_WEIGHTS / RESIDENTIAL_POWER_WEIGHTS.sum()),
    )
    power = np.where(segment == SME, 10.0, power)
    corp_power = rng.choice(CORPORATE_POWER, size=n, p=CORPORATE_POWER_WEIGHTS / CORPORATE_POWER_WEIGHTS.sum())
    power = np.where(segment == CORPORATE, corp_power.astype(float), power)

    weights = np.array([p.weight for p in PROVINCES])
    prov_idx = rng.choice(len(PROVINCES), size=n, p=weights / weights.sum())
    high_comp = np.array([p.high_competition for p in PROVINCES])[prov_idx]
    urban = rng.random(n) < np.where(high_comp, 0.82, 0.62)

    channel = np.empty(n, dtype=object)
    for seg in (RESIDENTIAL, SME, CORPORATE):
        idx = np.flatnonzero(segment == seg)
        shares = np.asarray(CHANNEL_BY_SEGMENT[seg], dtype=float)
        if channel_shares is not None:
            shares = channel_shares[seg]
        channel[idx] = rng.choice(CHANNELS, size=len(idx), p=shares / shares.sum())

    dual_share = np.select(
        [segment == SME, segment == CORPORATE],
        [DUAL_FUEL_SHARE[SME], DUAL_FUEL_SHARE[CORPORATE]],
        DUAL_FUEL_SHARE[RESIDENTIAL],
    )
    has_gas = rng.random(n) < dual_share
    gas_only = (segment == RESIDENTIAL) & ~has_gas & (rng.random(n) < GAS_ONLY_SHARE / 0.82)
    has_gas |= gas_only
    has_elec = ~gas_only

    dissatisfaction = rng.standard_normal(n)
    latent = rng.standard_normal(n)
    comparison = channel == "comparador"
    markup = np.select(
        [segment == CORPORATE, segment == SME],
        [rng.normal(-0.007, 0.004, n), rng.normal(0.016, 0.010, n)],
        rng.normal(0.017, 0.012, n),
    )
    markup = np.where(comparison & (segment != CORPORATE), markup - 0.022, markup)
    markup = np.maximum(markup, -0.02)
    gas_markup = np.maximum(rng.normal(0.09, 0.03, n), 0.0)
    tier2 = rng.normal(0.82, 0.015, n)
    tier3 = rng.normal(0.66, 0.015, n)
    lag = rng.geometric(PRODUCT_CHANGE_AT_RENEWAL, n) - 1
    return {
        "segment": segment,
        "contracted_power_kw": power,
        "is_second_residence": second,
        "province_code": np.array([p.code for p in PROVINCES])[prov_idx],
        "region": np.array([p.region for p in PROVINCES], dtype=object)[prov_idx],
        "is_high_competition": high_comp,
        "is_urban": urban,
        "sales_channel": channel,
        "has_elec": has_elec,
        "has_gas": has_gas,
        "activation": activation,
        "dissatisfaction": dissatisfaction,
        "latent_churn": latent,
        "elec_markup": markup,
        "gas_markup": gas_markup,
        "tier2_ratio": tier2,
        "tier3_ratio": tier3,
        "pre_window_product_change_lag": lag,
    }


def build_population(cfg: GeneratorConfig, month_starts: np.ndarray, anchor: np.datetime64) -> Population:
    """Base customers (tenure measured at the anchor, one year after ``start``) plus monthly acquisitions."""
    rng = rng_for(cfg.seed, STREAM_POPULATION)
    n = cfg.customers
    shares = np.array([b[2] for b in TENURE_BUCKETS], dtype=float)
    bucket = rng.choice(len(TENURE_BUCKETS), size=n, p=shares / shares.sum())
    lo = np.array([b[0] for b in TENURE_BUCKETS])[bucket]
    hi = np.array([b[1] for b in TENURE_BUCKETS])[bucket]
    tenure_days = rng.integers(lo, hi)
    parts = [_draw_customers(rng, n, anchor - tenure_days.astype("timedelta64[D]"))]

    scenario_start = np.datetime64(cfg.scenario_start, "D") if cfg.scenario_start else None
    for s in month_starts:
        if s <= anchor:
            continue
        arng = rng_for(cfg.seed, STREAM_ACQUISITION, month_key(s))
        k = int(arng.poisson(cfg.monthly_acquisition_rate * n))
        if k == 0:
            continue
        days = ((s + np.timedelta64(31, "D")).astype("datetime64[M]").astype("datetime64[D]") - s).astype(int)
        activation = s + arng.integers(0, days, k).astype("timedelta64[D]")
        shares_override = None
        if cfg.scenario is Scenario.NEW_CHANNEL and scenario_start is not None and s >= scenario_start:
            # Half of the new customers now sign up on the own website.
            shares_override = {}
            for seg, counts in CHANNEL_BY_SEGMENT.items():
                base = np.asarray(counts, dtype=float)
                base = base / base.sum() * 0.5
                base[CHANNELS.index("web_propia")] += 0.5
                shares_override[seg] = base
        parts.append(_draw_customers(arng, k, activation, shares_override))

    merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    total = len(merged["segment"])
    merged["customer_id"] = np.array([f"C{i:05d}" for i in range(1, total + 1)], dtype=object)
    return Population(**merged)


@dataclass
class World:
    """Everything simulated, on a monthly grid (customers x months)."""

    cfg: GeneratorConfig
    population: Population
    month_starts: np.ndarray  # datetime64[D], includes horizon months past ``end``
    n_written_months: int  # months up to and including ``end``'s month
    anchor: np.datetime64
    province_codes: np.ndarray
    elec_cost: np.ndarray  # provinces x months, EUR/kWh
    gas_cost: np.ndarray  # provinces x months, EUR/m3
    peaje: np.ndarray  # provinces x months, EUR/kWh
    tier1_price: np.ndarray  # customers x months
    gas_price: np.ndarray  # customers x months
    fixed_fee: np.ndarray  # customers (EUR/month)
    fixed_cost: np.ndarray  # customers (EUR/month)
    gas_fixed_revenue: np.ndarray  # customers (EUR/year)
    gas_fixed_cost: np.ndarray  # customers (EUR/year)
    months_to_renewal: np.ndarray  # customers x months, at month start; negative when expired
    is_expired: np.ndarray  # customers x months
    contract_start: np.ndarray  # customers x months, start of the contract in force at month start
    renewal_date: np.ndarray  # customers x months, renewal in force at month start
    last_product_change: np.ndarray  # customers x months, NaT when never
    eligible: np.ndarray  # customers x months: supplied on the month's first day
    contacts: dict[str, np.ndarray]  # one entry per simulated contact
    hazard: np.ndarray  # customers x months: P(churn during month | active at its start)
    drivers: dict[str, np.ndarray]  # customers x months: observable drivers at month start
    intercept: float
    churn_date: np.ndarray  # customers, NaT when not churned within the simulated months

    @property
    def n_months(self) -> int:
        return len(self.month_starts)

    def month_days(self) -> np.ndarray:
        """Days in each simulated month."""
        ends = (self.month_starts.astype("datetime64[M]") + 1).astype("datetime64[D]")
        return (ends - self.month_starts).astype(int)


def _month_starts(cfg: GeneratorConfig) -> tuple[np.ndarray, int]:
    first = np.datetime64(cfg.start, "M")
    last = np.datetime64(cfg.end, "M")
    extra = cfg.label_horizon_days // 28 + 2
    months = np.arange(first, last + 1 + extra, dtype="datetime64[M]")
    return months.astype("datetime64[D]"), int((last - first).astype(int)) + 1


def _province_costs(cfg: GeneratorConfig, month_starts: np.ndarray) -> tuple[np.ndarray, ...]:
    """Wholesale costs and tolls per province and month: a common upward drift, a seasonal swing and a
    small province spread (wider than the delivery's near-lockstep series)."""
    rng = rng_for(cfg.seed, STREAM_COSTS)
    n_p = len(PROVINCES)
    base_elec = rng.normal(0.0760, 0.0015, n_p)
    drift = rng.normal(0.058, 0.010, n_p)  # per year
    phase = rng.uniform(0, 2 * np.pi, n_p)
    base_gas = rng.normal(0.77, 0.035, n_p)
    base_peaje = rng.normal(0.0150, 0.0004, n_p)
    years = (month_starts - np.datetime64("2024-01-01")).astype(int) / 365.25
    month_of_year = month_starts.astype("datetime64[M]").astype(int) % 12
    season = np.cos(2 * np.pi * month_of_year / 12)  # high in winter
    elec = (
        base_elec[:, None]
        * (1 + drift[:, None] * years[None, :])
        * (1 + 0.02 * np.sin(2 * np.pi * month_of_year[None, :] / 12 + phase[:, None]))
    )
    gas = base_gas[:, None] * (1 + 0.03 * years[None, :]) * (1 + 0.05 * season[None, :])
    peaje = np.repeat(base_peaje[:, None], len(month_starts), axis=1) * (1 + 0.01 * years[None, :])
    if cfg.scenario is Scenario.PRICE_SHOCK and cfg.scenario_start is not None:
        after = month_starts >= np.datetime64(cfg.scenario_start, "D")
        shocked = shocked_provinces()
        rows = np.isin([p.code for p in PROVINCES], shocked)
        elec[np.ix_(rows, after)] *= 1.35
        gas[np.ix_(rows, after)] *= 1.25
    return np.round(elec, 5), np.round(gas, 4), np.round(peaje, 5)


def premium_scale(segment: np.ndarray, first_premium: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per customer, the mean and standard deviation of the first month's price premium over the
    customer's segment: the premium driver is standardized within segment against these."""
    mean, sd = np.zeros(len(segment)), np.ones(len(segment))
    for seg in (RESIDENTIAL, SME, CORPORATE):
        rows = segment == seg
        if rows.any():
            ref = first_premium[rows]
            mean[rows], sd[rows] = ref.mean(), max(ref.std(), 1e-6)
    return mean, sd


def peak_price_step(
    rng: np.random.Generator,
    previous: np.ndarray | None,
    repriced: np.ndarray,
    cost: np.ndarray,
    markup: np.ndarray,
    size: int | tuple[int, ...],
) -> np.ndarray:
    """One month of the peak electricity price process (unrounded): a contract that restarted is
    repriced so that a typical period mix (about 0.79 of peak) earns cost + toll + the customer's markup
    (with noise); otherwise a mid-contract increase with its monthly probability. ``size`` draws; the
    other arrays broadcast to it."""
    target = (cost + markup + rng.normal(0, REPRICE_NOISE_SD, size)) / TYPICAL_PERIOD_PRICE_FACTOR
    increase = rng.random(size) < PRICE_INCREASE_MONTHLY
    bump = 1 + rng.uniform(*PRICE_INCREASE_RANGE, size)
    if previous is None:  # the first month: every contract is priced afresh
        return target
    return np.where(repriced, target, np.where(increase, previous * bump, previous))


def price_drivers(
    last: np.ndarray, last_cost: np.ndarray, three_before: np.ndarray, mean: np.ndarray, sd: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Price drivers at a month start from the last billed peak price: its premium over cost + toll
    standardized within segment (``premium_scale``), and whether it rose by ``RECENT_RISE_FACTOR`` or
    more over the price three months before it."""
    return (last - last_cost - mean) / sd, last >= RECENT_RISE_FACTOR * three_before


def shocked_provinces() -> tuple[int, ...]:
    """Provinces hit by the price-shock scenario (the Mediterranean arc)."""
    return (3, 12, 30, 46, 8, 43)


def simulate(cfg: GeneratorConfig) -> World:
    """Simulate the whole world for ``cfg``."""
    month_starts, n_written = _month_starts(cfg)
    anchor = np.datetime64(cfg.start, "D") + np.timedelta64(0, "D")
    anchor = add_years(np.array([anchor]), 1)[0] - np.timedelta64(1, "D")
    pop = build_population(cfg, month_starts, anchor)
    n, m_total = len(pop), len(month_starts)
    prov_codes = np.array([p.code for p in PROVINCES])
    prov_idx = np.searchsorted(prov_codes, pop.province_code)
    elec_cost, gas_cost, peaje = _province_costs(cfg, month_starts)
    month_days = ((month_starts.astype("datetime64[M]") + 1).astype("datetime64[D]") - month_starts).astype(int)
    scenario_start = np.datetime64(cfg.scenario_start, "D") if cfg.scenario_start else None

    # ---- contracts: annual, renewing on the activation anniversary; a few expire without renewal
    months_to_renewal = np.zeros((n, m_total))
    is_expired = np.zeros((n, m_total), dtype=bool)
    contract_start = np.zeros((n, m_total), dtype="datetime64[D]")
    renewal_date = np.zeros((n, m_total), dtype="datetime64[D]")
    last_change = np.full((n, m_total), np.datetime64("NaT"), dtype="datetime64[D]")
    expired_on = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    act = pop.activation
    window_start = month_starts[0]
    # product changes before the window: ``lag`` renewals back from the last renewal before it
    renewals_before = anniversaries_until(act, window_start)
    lag = pop.pre_window_product_change_lag
    has_pre_change = (renewals_before > 0) & (lag < renewals_before)
    pre_change = np.where(has_pre_change, add_years(act, np.maximum(renewals_before - lag, 1)), np.datetime64("NaT"))
    current_change = pre_change.astype("datetime64[D]")

    tier1 = np.zeros((n, m_total))
    gas_price = np.zeros((n, m_total))
    for m, s in enumerate(month_starts):
        key = month_key(s)
        crng = rng_for(cfg.seed, STREAM_CONTRACTS, key)
        prng = rng_for(cfg.seed, STREAM_PRICES, key)
        u_expire = crng.random(n)
        u_change = crng.random(n)
        k = anniversaries_until(act, s)
        last_anniv = np.where(k > 0, add_years(act, np.maximum(k, 1)), act)
        next_anniv = add_years(act, k + 1)
        # renewals falling inside this month are decided now (stream of this month)
        month_end = s + np.timedelta64(int(month_days[m]), "D")
        renews_now = (next_anniv < month_end) & np.isnat(expired_on) & (act <= s)
        expire_now = renews_now & (u_expire < EXPIRE_AT_RENEWAL)
        change_now = renews_now & ~expire_now & (u_change < PRODUCT_CHANGE_AT_RENEWAL)
        currently_expired = ~np.isnat(expired_on) & (expired_on <= s)
        is_expired[:, m] = currently_expired
        renewal_date[:, m] = np.where(currently_expired, expired_on, next_anniv)
        contract_start[:, m] = np.where(currently_expired, add_years(expired_on, -1), last_anniv)
        months_to_renewal[:, m] = (renewal_date[:, m] - s).astype(int) / DAYS_PER_MONTH
        last_change[:, m] = current_change
        expired_on = np.where(expire_now, next_anniv, expired_on)
        current_change = np.where(change_now, next_anniv, current_change)

        # prices: repriced at each (re)start of contract, occasional mid-contract increases
        cost_now = elec_cost[prov_idx, m] + peaje[prov_idx, m]
        gas_target = gas_cost[prov_idx, m] + pop.gas_markup
        repriced = (m == 0) | (contract_start[:, m] >= s - np.timedelta64(int(month_days[m - 1]) if m else 31, "D"))
        tier1[:, m] = peak_price_step(prng, tier1[:, m - 1] if m else None, repriced, cost_now, pop.elec_markup, n)
        prev_gas = gas_price[:, m - 1] if m else gas_target
        gas_price[:, m] = np.where(repriced, gas_target, prev_gas)
        if (
            cfg.scenario is Scenario.PRICE_SHOCK
            and scenario_start is not None
            and s == scenario_start.astype("datetime64[M]").astype("datetime64[D]")
        ):
            shocked = np.isin(pop.province_code, shocked_provinces())
            tier1[:, m] = np.where(shocked, tier1[:, m] * PRICE_SHOCK_FACTOR, tier1[:, m])
            gas_price[:, m] = np.where(shocked, gas_price[:, m] * 1.15, gas_price[:, m])
    tier1 = np.round(np.maximum(tier1, 0.01), 5)
    gas_price = np.round(gas_price, 4)

    power = pop.contracted_power_kw
    fee_rate = np.select([pop.segment == CORPORATE, pop.segment == SME], [2.3, 2.45], 3.35)
    cost_rate = np.select([pop.segment == CORPORATE, pop.segment == SME], [2.3, 2.25], 2.3)
    fixed_fee = np.round(power * fee_rate, 2)
    fixed_cost = np.round(power * cost_rate, 2)
    prng0 = rng_for(cfg.seed, STREAM_PRICES, 0)
    gas_fixed_revenue = np.round(prng0.normal(63.7, 4.0, n) * np.where(pop.segment == RESIDENTIAL, 1, 3), 2)
    gas_fixed_cost = np.round(gas_fixed_revenue * prng0.normal(0.80, 0.05, n), 2)

    eligible = act[:, None] <= month_starts[None, :]

    # ---- observable price drivers, from the last billed month (m - 1)
    prev_tier1 = np.concatenate([tier1[:, :1], tier1[:, :-1]], axis=1)
    prev_cost = np.concatenate([elec_cost[prov_idx, :1], elec_cost[prov_idx, :-1]], axis=1) + np.concatenate(
        [peaje[prov_idx, :1], peaje[prov_idx, :-1]], axis=1
    )
    premium_mean, premium_sd = premium_scale(pop.segment, prev_tier1[:, 0] - prev_cost[:, 0])
    lag3 = np.concatenate([np.repeat(tier1[:, :1], 4, axis=1), tier1[:, :-4]], axis=1)[:, :m_total]
    premium_z, recent_increase = price_drivers(prev_tier1, prev_cost, lag3, premium_mean[:, None], premium_sd[:, None])

    # ---- contacts: emitted by latent dissatisfaction, renewal proximity and price rises
    contacts = _simulate_contacts(cfg, pop, month_starts, month_days, months_to_renewal, recent_increase)

    # ---- contact drivers at each month start: the contact window before it
    window = np.timedelta64(cfg.hazard.contact_window_days, "D")
    counts = [contact_window_counts(contacts, n, s - window, s) for s in month_starts]
    complaints, cancel, negative, positive, any_contact = (
        np.stack([c[key] for c in counts], axis=1) for key in CONTACT_WINDOW_KEYS
    )

    tenure_months = (month_starts[None, :] - act[:, None]).astype(int) / DAYS_PER_MONTH
    drivers = {
        "months_to_renewal": months_to_renewal,
        "is_expired": is_expired,
        "tenure_months": tenure_months,
        "premium_z": premium_z,
        "recent_price_increase": recent_increase,
        "complaints_window": complaints,
        "cancellation_intent_window": cancel > 0,
        "negative_contacts_window": negative > 0,
        "positive_contacts_window": positive > 0,
        "any_contact_window": any_contact > 0,
    }
    z = _hazard_logit_without_intercept(cfg, pop, drivers, month_starts)
    window_end = month_starts[min(12, m_total - 1)]
    intercept = _solve_intercept(cfg, z, eligible, act < window_end)
    hazard = 1.0 / (1.0 + np.exp(-(z + intercept)))
    hazard = np.where(eligible, hazard, 0.0)

    # ---- churn: first month whose uniform draw falls under the hazard; day uniform within the month
    churn_date = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    gone = np.zeros(n, dtype=bool)
    for m, s in enumerate(month_starts):
        crng = rng_for(cfg.seed, STREAM_CHURN, month_key(s))
        u = crng.random(n)
        day = crng.integers(1, month_days[m] + 1, n)
        leaves = ~gone & eligible[:, m] & (u < hazard[:, m])
        churn_date = np.where(leaves, s + day.astype("timedelta64[D]"), churn_date)
        gone |= leaves

    return World(
        cfg=cfg,
        population=pop,
        month_starts=month_starts,
        n_written_months=n_written,
        anchor=anchor,
        province_codes=prov_codes,
        elec_cost=elec_cost,
        gas_cost=gas_cost,
        peaje=peaje,
        tier1_price=tier1,
        gas_price=gas_price,
        fixed_fee=fixed_fee,
        fixed_cost=fixed_cost,
        gas_fixed_revenue=gas_fixed_revenue,
        gas_fixed_cost=gas_fixed_cost,
        months_to_renewal=months_to_renewal,
        is_expired=is_expired,
        contract_start=contract_start,
        renewal_date=renewal_date,
        last_product_change=last_change,
        eligible=eligible,
        contacts=contacts,
        hazard=hazard,
        drivers=drivers,
        intercept=intercept,
        churn_date=churn_date,
    )


def _simulate_contacts(
    cfg: GeneratorConfig,
    pop: Population,
    month_starts: np.ndarray,
    month_days: np.ndarray,
    months_to_renewal: np.ndarray,
    recent_increase: np.ndarray,
) -> dict[str, np.ndarray]:
    """Call-center contacts for every customer and month, as if nobody left (emission filters later)."""
    n = len(pop)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("customer", "date", "intent", "sentiment", "style")}
    for m, s in enumerate(month_starts):
        rng = rng_for(cfg.seed, STREAM_CONTACTS, month_key(s))
        near = near_renewal(months_to_renewal[:, m])
        rate = contact_rate(pop.dissatisfaction, months_to_renewal[:, m], recent_increase[:, m])
        active = pop.activation <= s
        counts = rng.poisson(np.where(active, rate, 0.0))
        cust = np.repeat(np.arange(n), counts)
        k = len(cust)
        day = rng.integers(0, month_days[m], k)
        tone = TONE_PER_DISSATISFACTION * pop.dissatisfaction[cust] + TONE_PER_PRICE_RISE * recent_increase[cust, m]
        tone = tone + rng.standard_normal(k)
        sentiment = np.where(tone > NEGATIVE_TONE, 0, np.where(tone < POSITIVE_TONE, 2, 1))
        u = rng.random(k)
        probs = INTENT_GIVEN_SENTIMENT[sentiment].copy()
        # near renewal the talk turns to renewal; after a price rise, to prices
        probs[:, INTENTS.index("renewal")] += RENEWAL_TALK_NEAR_RENEWAL * near[cust]
        probs[:, INTENTS.index("pricing")] += PRICING_TALK_AFTER_PRICE_RISE * recent_increase[cust, m]
        probs /= probs.sum(axis=1, keepdims=True)
        intent = (u[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
        out["customer"].append(cust)
        out["date"].append(s + day.astype("timedelta64[D]"))
        out["intent"].append(np.minimum(intent, len(INTENTS) - 1))
        out["sentiment"].append(sentiment)
        out["style"].append(rng.integers(0, 2, k))
    return {k: np.concatenate(v) for k, v in out.items()}


def near_renewal(months_to_renewal: np.ndarray) -> np.ndarray:
    """Renewal within the next two months (contacts rise and turn to renewal talk)."""
    return (months_to_renewal >= 0) & (months_to_renewal < 2)


def contact_rate(dissatisfaction: np.ndarray, months_to_renewal: np.ndarray, recent_increase: np.ndarray) -> np.ndarray:
    """Expected contacts in a month: latent dissatisfaction, renewal proximity, a price rise, an expired contract."""
    near = near_renewal(months_to_renewal)
    # summed in this order so that the generated bytes stay the same
    log_rate = CONTACT_PER_DISSATISFACTION * dissatisfaction + 0.45 * near
    log_rate = log_rate + 0.6 * recent_increase + 0.3 * (months_to_renewal < 0)
    return CONTACT_BASE_RATE * np.exp(log_rate)


CONTACT_WINDOW_KEYS = ("complaints", "cancel", "negative", "positive", "any")


def contact_window_counts(
    contacts: dict[str, np.ndarray], n: int, since: np.datetime64, before: np.datetime64
) -> dict[str, np.ndarray]:
    """Per customer (``n``), the contacts dated in [since, before): complaints, cancellation intents,
    negative and positive ones, and all of them (``CONTACT_WINDOW_KEYS``)."""
    inside = (contacts["date"] >= since) & (contacts["date"] < before)

    def count(kind: np.ndarray) -> np.ndarray:
        return np.bincount(contacts["customer"][inside & kind], minlength=n).astype(float)

    return {
        "complaints": count(contacts["intent"] == INTENTS.index("complaint")),
        "cancel": count(contacts["intent"] == INTENTS.index("cancellation")),
        "negative": count(contacts["sentiment"] == 0),
        "positive": count(contacts["sentiment"] == 2),
        "any": count(np.ones(len(inside), dtype=bool)),
    }


def _hazard_logit_without_intercept(
    cfg: GeneratorConfig, pop: Population, d: dict[str, np.ndarray], month_starts: np.ndarray
) -> np.ndarray:
    """Log-odds of churning in each month, before the intercept."""
    static = static_logit(cfg, pop) + cfg.hazard.latent_sd * pop.latent_churn
    z = static[:, None] + dynamic_logit(cfg.hazard, d)
    return z + price_shock_logit(cfg, pop.province_code, month_starts)


def static_logit(cfg: GeneratorConfig, pop: Population) -> np.ndarray:
    """Per-customer log-odds from facts that never change (segment, channel, province...), latent excluded."""
    h = cfg.hazard
    return (
        h.high_competition * pop.is_high_competition
        + h.dual_fuel * pop.dual_fuel
        + h.second_residence * pop.is_second_residence
        + np.select([pop.segment == SME, pop.segment == CORPORATE], [h.sme, h.corporate], 0.0)
        + np.array([h.channel.get(c, 0.0) for c in pop.sales_channel])
    )


def dynamic_logit(h: HazardCoefficients, d: dict[str, np.ndarray]) -> np.ndarray:
    """Log-odds from the drivers observed at a month start; elementwise over arrays of any one shape."""
    mtr = d["months_to_renewal"]
    renewal = np.select(
        [d["is_expired"], mtr < 1, mtr < 3, mtr < 6],
        [h.renewal_expired, h.renewal_this_month, h.renewal_1_3_months, h.renewal_3_6_months],
        h.renewal_6_12_months,
    )
    t = d["tenure_months"]
    tenure = np.select([t < 12, t < 24, t < 60], [h.tenure_under_1y, h.tenure_1_2y, h.tenure_2_5y], h.tenure_5y_plus)
    return (
        renewal
        + tenure
        + h.price_premium_per_sd * np.clip(d["premium_z"], -3, 3)
        + h.recent_price_increase * d["recent_price_increase"]
        + h.complaint_each * np.minimum(d["complaints_window"], h.complaint_cap)
        + h.cancellation_intent * d["cancellation_intent_window"]
        + h.negative_contact * d["negative_contacts_window"]
        + h.positive_contact * d["positive_contacts_window"]
        + h.any_contact * d["any_contact_window"]
    )


def price_shock_logit(cfg: GeneratorConfig, province_code: np.ndarray, month_starts: np.ndarray) -> np.ndarray:
    """Extra log-odds of the price-shock scenario (customers x months; zero outside it)."""
    shock = np.zeros((len(province_code), len(month_starts)))
    if cfg.scenario is Scenario.PRICE_SHOCK and cfg.scenario_start is not None:
        after = month_starts >= np.datetime64(cfg.scenario_start, "D")
        shocked = np.isin(province_code, shocked_provinces())
        shock += cfg.hazard.price_shock * (shocked[:, None] & after[None, :])
    return shock


def _solve_intercept(cfg: GeneratorConfig, z: np.ndarray, eligible: np.ndarray, supplied: np.ndarray) -> float:
    """Intercept giving the target churn rate over the first twelve months among the customers supplied
    in that year (bisection). The window never depends on ``end``, so longer runs keep the intercept.
    """
    window = np.arange(min(12, z.shape[1]))
    zw, ew = z[supplied][:, window], eligible[supplied][:, window]
    lo, hi = -15.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        p = np.where(ew, 1 / (1 + np.exp(-(zw + mid))), 0.0)
        annual = 1 - np.prod(1 - p, axis=1)
        if annual.mean() > cfg.annual_churn_rate:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def truth_probabilities(world: World, horizon_days: int) -> dict[str, np.ndarray]:
    """True probability of churning within ``horizon_days`` after each monthly as-of date.

    For a customer active on the as-of date s (the first day of month m), churn dates in month m + k are
    uniform over (s_{m+k}, s_{m+k+1}], so P(leave within (s, s + H]) = 1 - prod_k (1 - f_k * h_{m+k}),
    where h is the monthly hazard and f_k the share of month m + k's days that fall inside the window.
    """
    starts = world.month_starts
    days = world.month_days()
    n = len(world.population)
    rows_c, rows_m, probs = [], [], []
    for m in range(world.n_written_months):
        s = starts[m]
        active = world.eligible[:, m] & (np.isnat(world.churn_date) | (world.churn_date > s))
        survive = np.ones(n)
        for k in range(m, world.n_months):
            covered = int(np.clip((s + np.timedelta64(horizon_days, "D") - starts[k]).astype(int), 0, days[k]))
            if covered == 0:
                break
            survive *= 1 - world.hazard[:, k] * covered / days[k]
        idx = np.flatnonzero(active)
        rows_c.append(idx)
        rows_m.append(np.full(len(idx), m))
        probs.append(1 - survive[idx])
    return {"customer": np.concatenate(rows_c), "month": np.concatenate(rows_m), "p_true": np.concatenate(probs)}
