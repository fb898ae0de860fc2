"""The best churn probability any model could give: the truth conditioned on what is observable.

``truth_probabilities`` (the oracle) knows each customer's latent churn effect and latent dissatisfaction
and uses the hazard of the months inside the label horizon, which moves with contacts that have not
happened yet on the as-of date. No model can know those. The comparator the model is held to is

    p_observable = E[ P(churn within the horizon) | everything delivered before the as-of date ]

computed here by Bayes and Monte Carlo:

1. Posterior of the two latent factors per customer on a grid (they are independent a priori):
   dissatisfaction from the contacts before the as-of date (Poisson counts per month and each contact's
   tone), the latent churn effect from having survived every month so far.
2. ``replicates`` futures per customer: latent factors drawn from that posterior, then month by month
   through the horizon the contacts (as independent Poisson cells by tone and intent, exactly the
   generator's contact process), the contract expiries at renewal, and the hazard from the resulting
   drivers.
3. p_observable = 1 - mean over futures of the probability of surviving the horizon.

The horizon's prices are drawn too: the hazard of a horizon month reads the last billed month's peak
price, which is billed after the as-of date from the second horizon month on, so each future draws it
with the generator's price process (a contract that restarts is repriced at cost + the customer's
markup + noise; otherwise a mid-contract increase with its monthly probability), following the future's
own renewals and expiries. Taken as known rather than drawn: the province costs, each customer's markup
and the price-shock scenario (the utility's inputs and decisions). A contact's tone category is used as the
generator planted it; a model reads it from the note's text. Each of these makes p_observable slightly
better informed than any model can be, that is, a harder target, never an easier one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from spanishgas.generator.config import Scenario
from spanishgas.generator.world import (
    CONTACT_PER_DISSATISFACTION,
    CONTACT_WINDOW_KEYS,
    DAYS_PER_MONTH,
    EXPIRE_AT_RENEWAL,
    INTENT_GIVEN_SENTIMENT,
    INTENTS,
    NEGATIVE_TONE,
    POSITIVE_TONE,
    PRICE_SHOCK_FACTOR,
    PRICING_TALK_AFTER_PRICE_RISE,
    RENEWAL_TALK_NEAR_RENEWAL,
    TONE_PER_DISSATISFACTION,
    TONE_PER_PRICE_RISE,
    World,
    add_years,
    anniversaries_until,
    contact_rate,
    contact_window_counts,
    dynamic_logit,
    month_key,
    near_renewal,
    peak_price_step,
    premium_scale,
    price_drivers,
    price_shock_logit,
    rng_for,
    shocked_provinces,
    static_logit,
)

STREAM_OBSERVABLE_TRUTH = 11
# Posterior grid for a standard-normal latent factor: wide enough that the tails carry no mass.
GRID = np.linspace(-4.5, 4.5, 46)
GRID_STEP = float(GRID[1] - GRID[0])
LOG_PRIOR = -0.5 * GRID**2
DEFAULT_REPLICATES = 64
CANCELLATION, COMPLAINT = INTENTS.index("cancellation"), INTENTS.index("complaint")
NEGATIVE, NEUTRAL, POSITIVE = 0, 1, 2


def sentiment_probabilities(dissatisfaction: np.ndarray, recent_increase: np.ndarray) -> np.ndarray:
    """P(negative, neutral, positive) of one contact, shape ``dissatisfaction.shape + (3,)``."""
    tone = TONE_PER_DISSATISFACTION * dissatisfaction + TONE_PER_PRICE_RISE * recent_increase
    negative = 1.0 - ndtr(NEGATIVE_TONE - tone)
    positive = ndtr(POSITIVE_TONE - tone)
    return np.stack([negative, 1.0 - negative - positive, positive], axis=-1)


def _sample_grid(rng: np.random.Generator, log_weight: np.ndarray, replicates: int) -> np.ndarray:
    """Draw ``replicates`` values per row from a gridded log posterior (rows x grid), jittered within a cell."""
    w = np.exp(log_weight - log_weight.max(axis=1, keepdims=True))
    cdf = np.cumsum(w, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random((len(cdf), replicates))
    # one searchsorted over all rows: row i's CDF and draws are shifted by i, which keeps the array sorted
    shift = np.arange(len(cdf))[:, None]
    cell = np.searchsorted((cdf + shift).ravel(), (u + shift).ravel()).reshape(u.shape) - shift * len(GRID)
    cell = np.clip(cell, 0, len(GRID) - 1)
    return GRID[cell] + rng.uniform(-GRID_STEP / 2, GRID_STEP / 2, u.shape)


def history_log_likelihoods(world: World) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """For each written month m: the log-likelihood, on ``GRID``, of each customer's history before m's
    first day as a function of latent dissatisfaction (contact counts and tones) and of the latent churn
    effect (surviving every month so far). Yields ``(m, dissatisfaction, latent_churn)``, customers x grid;
    the arrays are updated in place for the next month."""
    cfg, pop, h = world.cfg, world.population, world.cfg.hazard
    starts = world.month_starts
    n, n_months = len(pop), world.n_months
    z_observed = (
        static_logit(cfg, pop)[:, None]
        + price_shock_logit(cfg, pop.province_code, starts)
        + dynamic_logit(h, world.drivers)  # every driver except the latent effect
    )
    ri = world.drivers["recent_price_increase"]
    # per customer and month: contacts by tone, and the contact rate at zero dissatisfaction
    c = world.contacts
    c_month = np.searchsorted(starts, c["date"], side="right") - 1
    tone_counts = np.zeros((n, n_months, 3))
    np.add.at(tone_counts, (c["customer"], c_month, c["sentiment"]), 1)
    base_rate = np.where(
        pop.activation[:, None] <= starts[None, :],
        contact_rate(np.zeros((n, 1)), world.months_to_renewal, ri),
        0.0,
    )
    log_tone = np.log(np.clip(sentiment_probabilities(GRID[None, :], np.array([[0.0], [1.0]])), 1e-300, None))

    dissatisfaction = np.zeros((n, len(GRID)))
    latent = np.zeros((n, len(GRID)))
    for m in range(world.n_written_months):
        if m > 0:  # month m - 1 is now history
            j = m - 1
            dissatisfaction += (
                CONTACT_PER_DISSATISFACTION * GRID[None, :] * tone_counts[:, j].sum(axis=1, keepdims=True)
                - base_rate[:, j : j + 1] * np.exp(CONTACT_PER_DISSATISFACTION * GRID)[None, :]
                + np.einsum("ns,ngs->ng", tone_counts[:, j], log_tone[ri[:, j].astype(int)])
            )
            hazard = 1 / (1 + np.exp(-(z_observed[:, j : j + 1] + h.latent_sd * GRID[None, :] + world.intercept)))
            latent += np.where(world.eligible[:, j : j + 1], np.log1p(-hazard), 0.0)
        yield m, dissatisfaction, latent


def posterior_mean(log_likelihood: np.ndarray) -> np.ndarray:
    """Posterior mean of a standard-normal latent factor per row, from its gridded log-likelihood."""
    log_w = log_likelihood + LOG_PRIOR
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    return (w * GRID).sum(axis=1) / w.sum(axis=1)


def observable_probabilities(
    world: World, horizon_days: int, replicates: int = DEFAULT_REPLICATES
) -> dict[str, np.ndarray]:
    """p_observable for the same rows, in the same order, as ``truth_probabilities``."""
    cfg, pop = world.cfg, world.population
    z_known = static_logit(cfg, pop)[:, None] + price_shock_logit(cfg, pop.province_code, world.month_starts)
    basis = _PriceBasis.of(world)
    rows_c, rows_m, probs = [], [], []
    for m, loglik_dissatisfaction, loglik_latent in history_log_likelihoods(world):
        s = world.month_starts[m]
        active = world.eligible[:, m] & (np.isnat(world.churn_date) | (world.churn_date > s))
        idx = np.flatnonzero(active)
        rows_c.append(idx)
        rows_m.append(np.full(len(idx), m))
        history = (loglik_dissatisfaction, loglik_latent)
        probs.append(_forward(world, basis, idx, m, horizon_days, replicates, history, z_known))
    return {"customer": np.concatenate(rows_c), "month": np.concatenate(rows_m), "p_observable": np.concatenate(probs)}


def _forward(
    world: World,
    basis: _PriceBasis,
    idx: np.ndarray,
    m: int,
    horizon_days: int,
    replicates: int,
    history: tuple[np.ndarray, np.ndarray],
    z_known: np.ndarray,
) -> np.ndarray:
    """Mean probability of churning within the horizon over ``replicates`` futures of customers ``idx``
    (``history``: the log-likelihoods of latent dissatisfaction and latent churn effect on the grid)."""
    loglik_dissatisfaction, loglik_latent = history
    cfg, pop, h = world.cfg, world.population, world.cfg.hazard
    starts, days = world.month_starts, world.month_days()
    s = starts[m]
    if len(idx) == 0:
        return np.zeros(0)
    rng = rng_for(cfg.seed, STREAM_OBSERVABLE_TRUTH, month_key(s), horizon_days)
    shape = (len(idx), replicates)
    dissatisfaction = _sample_grid(rng, loglik_dissatisfaction[idx] + LOG_PRIOR, replicates)
    latent = _sample_grid(rng, loglik_latent[idx] + LOG_PRIOR, replicates)
    act = pop.activation[idx]

    prices = _HorizonPrices(world, basis, idx, m, shape)
    expired = np.broadcast_to(world.is_expired[idx, m][:, None], shape).copy()
    expired_on = np.broadcast_to(world.renewal_date[idx, m][:, None], shape).copy()  # used where expired
    simulated: list[tuple[int, dict[tuple[int, str], np.ndarray]]] = []  # (month, contacts by tone, intent)
    survive = np.ones(shape)
    end = s + np.timedelta64(horizon_days, "D")
    for k in range(m, world.n_months):
        covered = int(np.clip((end - starts[k]).astype(int), 0, days[k]))
        if covered == 0:
            break
        sk = starts[k]
        renewals = anniversaries_until(act, sk)
        next_renewal = add_years(act, renewals + 1)
        # the month's price, billed after the as-of date: repriced when the contract in force started
        # (renewed, or the supply activated) since the previous month's first day, as ``simulate`` does.
        # Month 0's price is known: the world's drivers of its first month already read it.
        if k > 0:
            previous_start = sk - np.timedelta64(int(days[k - 1]), "D")
            if k == m:
                contract_start = world.contract_start[idx, k][:, None]
                repriced = contract_start >= previous_start
            else:
                contract_start = np.where(renewals > 0, add_years(act, np.maximum(renewals, 1)), act)[:, None]
                repriced = ~expired & (contract_start >= previous_start)
            prices.draw(rng, k, repriced)
        mtr = np.where(
            expired,
            (expired_on - sk).astype(int) / DAYS_PER_MONTH,
            ((next_renewal - sk).astype(int) / DAYS_PER_MONTH)[:, None],
        )
        window_start = sk - np.timedelta64(h.contact_window_days, "D")
        seen = {key: v[idx] for key, v in contact_window_counts(world.contacts, len(pop), window_start, s).items()}
        future = _simulated_window(rng, simulated, starts, days, window_start, shape)
        window = {key: seen[key][:, None] + future[key] for key in CONTACT_WINDOW_KEYS}
        premium_z, rise = prices.drivers(k)
        drivers = {
            "months_to_renewal": mtr,
            "is_expired": expired,
            "tenure_months": world.drivers["tenure_months"][idx, k][:, None],
            "premium_z": premium_z,
            "recent_price_increase": rise,
            "complaints_window": window["complaints"],
            "cancellation_intent_window": window["cancel"] > 0,
            "negative_contacts_window": window["negative"] > 0,
            "positive_contacts_window": window["positive"] > 0,
            "any_contact_window": window["any"] > 0,
        }
        z = z_known[idx, k][:, None] + dynamic_logit(h, drivers) + h.latent_sd * latent + world.intercept
        survive *= 1 - covered / days[k] / (1 + np.exp(-z))
        if k + 1 >= world.n_months or covered < days[k]:
            break
        # the month's contacts: independent Poisson cells by tone and intent (thinning of the month's count)
        rise = rise.astype(float)
        rate = contact_rate(dissatisfaction, mtr, rise)
        tone = sentiment_probabilities(dissatisfaction, rise)
        talk = 1 + RENEWAL_TALK_NEAR_RENEWAL * near_renewal(mtr) + PRICING_TALK_AFTER_PRICE_RISE * rise
        cells: dict[tuple[int, str], np.ndarray] = {}
        for sentiment in (NEGATIVE, NEUTRAL, POSITIVE):
            cancel_share = INTENT_GIVEN_SENTIMENT[sentiment, CANCELLATION] / talk
            complaint_share = INTENT_GIVEN_SENTIMENT[sentiment, COMPLAINT] / talk
            expected = rate * tone[..., sentiment]
            cells[sentiment, "cancel"] = rng.poisson(expected * cancel_share)
            cells[sentiment, "complaint"] = rng.poisson(expected * complaint_share)
            cells[sentiment, "other"] = rng.poisson(expected * np.clip(1 - cancel_share - complaint_share, 0, None))
        simulated.append((k, cells))
        # a renewal inside the month may end in expiry instead (decided that month, unknown before)
        renews = (next_renewal < starts[k + 1])[:, None] & ~expired & (act <= sk)[:, None]
        expire = renews & (rng.random(shape) < EXPIRE_AT_RENEWAL)
        expired_on = np.where(expire, next_renewal[:, None], expired_on)
        expired |= expire
    return 1 - survive.mean(axis=1)


@dataclass(frozen=True)
class _PriceBasis:
    """What the price process needs besides the prices, per customer (computed once per world)."""

    cost: np.ndarray  # customers x months: province energy cost + toll
    premium_mean: np.ndarray  # customers: the premium's standardization within segment
    premium_sd: np.ndarray
    shocked: np.ndarray  # customers: in a province the price-shock scenario hits

    @classmethod
    def of(cls, world: World) -> _PriceBasis:
        pop = world.population
        prov = np.searchsorted(world.province_codes, pop.province_code)
        cost = world.elec_cost[prov] + world.peaje[prov]
        mean, sd = premium_scale(pop.segment, world.tier1_price[:, 0] - cost[:, 0])
        return cls(cost, mean, sd, np.isin(pop.province_code, shocked_provinces()))


class _HorizonPrices:
    """Peak prices of one future per column: billed months before the as-of month as they were, the
    as-of month and later drawn with the generator's price process (``peak_price_step``), up to
    rounding (the world rounds its prices once at the end, a draw rounds each month)."""

    def __init__(self, world: World, basis: _PriceBasis, idx: np.ndarray, m: int, shape: tuple[int, int]) -> None:
        self.world, self.idx, self.m, self.shape = world, idx, m, shape
        self.cost = basis.cost[idx]
        self.mean, self.sd = basis.premium_mean[idx, None], basis.premium_sd[idx, None]
        self.markup = world.population.elec_markup[idx, None]
        self.shocked = basis.shocked[idx, None]
        self.drawn: dict[int, np.ndarray] = {}

    def peak(self, j: int) -> np.ndarray:
        """Month ``j``'s peak price: known before the as-of month (and in the first month), drawn after."""
        j = max(j, 0)
        return self.world.tier1_price[self.idx, j][:, None] if j < max(self.m, 1) else self.drawn[j]

    def drivers(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Premium (standardized) and recent-rise flag at month ``k``'s start, from the last billed month."""
        if k == self.m:  # billed before the as-of date: observed
            d = self.world.drivers
            return d["premium_z"][self.idx, k][:, None], d["recent_price_increase"][self.idx, k][:, None]
        return price_drivers(self.peak(k - 1), self.cost[:, k - 1 : k], self.peak(k - 4), self.mean, self.sd)

    def draw(self, rng: np.random.Generator, j: int, repriced: np.ndarray) -> None:
        """Draw month ``j`` (> 0)'s peak price for every future (``repriced``: the contract restarted)."""
        cfg = self.world.cfg
        price = peak_price_step(rng, self.peak(j - 1), repriced, self.cost[:, j : j + 1], self.markup, self.shape)
        shock_month = cfg.scenario_start and np.datetime64(cfg.scenario_start, "M").astype("datetime64[D]")
        if cfg.scenario is Scenario.PRICE_SHOCK and self.world.month_starts[j] == shock_month:
            price = np.where(self.shocked, price * PRICE_SHOCK_FACTOR, price)
        self.drawn[j] = np.round(np.maximum(price, 0.01), 5)


def _simulated_window(
    rng: np.random.Generator,
    simulated: list[tuple[int, dict[tuple[int, str], np.ndarray]]],
    starts: np.ndarray,
    days: np.ndarray,
    window_start: np.datetime64,
    shape: tuple[int, int],
) -> dict[str, np.ndarray]:
    """Contact-window counts from the simulated months: a month partly before ``window_start`` keeps each
    contact with the share of its days inside the window (contact days are uniform within a month)."""
    out = {key: np.zeros(shape) for key in CONTACT_WINDOW_KEYS}
    for j, cells in simulated:
        inside = int(np.clip((starts[j] + np.timedelta64(int(days[j]), "D") - window_start).astype(int), 0, days[j]))
        if inside == 0:
            continue
        for (sentiment, kind), counts in cells.items():
            kept = counts if inside == days[j] else rng.binomial(counts, inside / days[j])
            out["any"] += kept
            if kind == "cancel":
                out["cancel"] += kept
            elif kind == "complaint":
                out["complaints"] += kept
            if sentiment == NEGATIVE:
                out["negative"] += kept
            elif sentiment == POSITIVE:
                out["positive"] += kept
    return out
