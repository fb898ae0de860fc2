"""The best-possible probability (``p_observable``) is the oracle's expectation given what was observable.

Three checks: with nothing hidden (no latent effect, no contacts, no expiries, prices that follow from
the contract alone) it equals the oracle
exactly; over a horizon inside the as-of month it equals the oracle (latent effect off) because every
driver is already observed; with everything on, within each decile of ``p_observable`` the oracle's mean
matches it (the defining property of a conditional expectation) and it ranks below the oracle.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from spanishgas.generator import GeneratorConfig, HazardCoefficients
from spanishgas.generator import observable_truth as ot
from spanishgas.generator import world as w

pytestmark = pytest.mark.unit


def _config(
    latent_sd: float = HazardCoefficients().latent_sd, customers: int = 1_500, window_days: int = 180
) -> GeneratorConfig:
    return GeneratorConfig(
        customers=customers,
        start=date(2023, 1, 1),
        end=date(2024, 6, 30),
        hazard=HazardCoefficients(latent_sd=latent_sd, contact_window_days=window_days),
    )


def _both(world: w.World, horizon_days: int) -> tuple[np.ndarray, np.ndarray]:
    oracle = w.truth_probabilities(world, horizon_days)
    best = ot.observable_probabilities(world, horizon_days, replicates=32)
    assert np.array_equal(oracle["customer"], best["customer"])
    assert np.array_equal(oracle["month"], best["month"])
    return oracle["p_true"], best["p_observable"]


@pytest.mark.parametrize(
    ("expire", "increase", "rtol"),
    [
        (0.0, 0.0, 1e-9),
        (1.0, 0.0, 1e-9),  # every renewal expires: expired contracts are not repriced
        # every month a 5 % increase: the world rounds its prices once, a draw every month, which moves
        # the premium by up to 1e-5 EUR/kWh (a missed or extra increase moves it by 7e-3)
        (0.0, 1.0, 1e-3),
    ],
)
def test_equals_the_oracle_when_nothing_is_hidden(
    monkeypatch: pytest.MonkeyPatch, expire: float, increase: float, rtol: float
) -> None:
    monkeypatch.setattr(w, "CONTACT_BASE_RATE", 0.0)
    for module in (w, ot):  # expiries that follow from the contract alone
        monkeypatch.setattr(module, "EXPIRE_AT_RENEWAL", expire)
    # prices too (the world and the comparator share ``peak_price_step``)
    monkeypatch.setattr(w, "PRICE_INCREASE_MONTHLY", increase)
    monkeypatch.setattr(w, "PRICE_INCREASE_RANGE", (0.05, 0.05))
    monkeypatch.setattr(w, "REPRICE_NOISE_SD", 0.0)
    world = w.simulate(_config(latent_sd=0.0))
    assert len(world.contacts["customer"]) == 0
    assert world.is_expired.any() == (expire > 0)
    oracle, best = _both(world, 90)
    assert len(oracle) > 10_000
    np.testing.assert_allclose(best, oracle, rtol=rtol, atol=1e-12)


def test_does_not_know_the_prices_billed_after_the_as_of_date(monkeypatch: pytest.MonkeyPatch) -> None:
    # as above, except that mid-contract increases and repricing noise are left on: only the horizon's
    # prices are unknown, and the best possible is their expectation, not the realized path
    monkeypatch.setattr(w, "CONTACT_BASE_RATE", 0.0)
    monkeypatch.setattr(w, "EXPIRE_AT_RENEWAL", 0.0)
    monkeypatch.setattr(ot, "EXPIRE_AT_RENEWAL", 0.0)
    world = w.simulate(_config(latent_sd=0.0, customers=3_000))
    oracle, best = _both(world, 90)
    differs = ~np.isclose(best, oracle, rtol=1e-6, atol=1e-9)
    assert differs.mean() > 0.5  # every future may see an increase, so nearly every row moves a little
    _assert_calibrated_against_the_oracle(oracle, best, hidden=False)


def test_a_horizon_inside_the_month_needs_nothing_unobserved() -> None:
    # contacts and expiries on: the as-of month's hazard depends only on what happened before it
    world = w.simulate(_config(latent_sd=0.0))
    assert len(world.contacts["customer"]) > 1_000
    oracle, best = _both(world, 28)
    np.testing.assert_allclose(best, oracle, rtol=1e-9, atol=1e-12)


@pytest.fixture(scope="module")
def full_world() -> w.World:
    return w.simulate(_config(customers=3_000))


def test_is_the_oracles_expectation_given_the_observables(full_world: w.World) -> None:
    _assert_calibrated_against_the_oracle(*_both(full_world, 90))


def test_contacts_simulated_in_the_horizon_leave_a_short_window() -> None:
    # a 20-day contact window inside a 90-day horizon: a simulated month's contacts age out, partly
    # (thinned by the days still inside) and then wholly
    world = w.simulate(_config(customers=3_000, window_days=20))
    _assert_calibrated_against_the_oracle(*_both(world, 90))


def _assert_calibrated_against_the_oracle(oracle: np.ndarray, best: np.ndarray, hidden: bool = True) -> None:
    frame = pd.DataFrame({"oracle": oracle, "best": best})
    frame["decile"] = pd.qcut(frame["best"], 10, labels=False)
    by_decile = frame.groupby("decile").mean()
    # a wrong contact, expiry or posterior model shows up as a decile whose oracle mean drifts away
    np.testing.assert_allclose(by_decile["best"], by_decile["oracle"], rtol=0.08, atol=0.0005)
    assert frame["best"].mean() == pytest.approx(frame["oracle"].mean(), rel=0.03)
    if hidden:  # the hidden part is real: the best possible is much less spread than the oracle
        assert frame["best"].std() < 0.95 * frame["oracle"].std()


def test_ranks_below_the_oracle(full_world: w.World) -> None:
    oracle, best = _both(full_world, 90)
    t = w.truth_probabilities(full_world, 90)
    as_of = full_world.month_starts[t["month"]]
    churn = full_world.churn_date[t["customer"]]
    horizon = np.timedelta64(90, "D")
    complete = as_of + horizon <= np.datetime64("2024-06-30")
    label = (~np.isnat(churn) & (churn > as_of) & (churn <= as_of + horizon))[complete]
    assert roc_auc_score(label, best[complete]) < roc_auc_score(label, oracle[complete])
    assert average_precision_score(label, best[complete]) < average_precision_score(label, oracle[complete])
    # and it still ranks: far above chance
    assert roc_auc_score(label, best[complete]) > 0.75


def test_the_latent_posteriors_learn_from_the_history(full_world: w.World) -> None:
    """Regressing each customer's true latent factor on its posterior mean gives a slope near one: the
    contact history is used (the mean spreads) and not over-trusted (it does not spread too far)."""
    pop = full_world.population
    months = list(ot.history_log_likelihoods(full_world))
    m, dissatisfaction, latent = months[-1]
    active = full_world.eligible[:, m] & (
        np.isnat(full_world.churn_date) | (full_world.churn_date > full_world.month_starts[m])
    )
    mean_d = ot.posterior_mean(dissatisfaction)[active]
    assert mean_d.std() > 0.3  # eighteen months of contacts say something about each customer
    slope_d = np.polyfit(mean_d, pop.dissatisfaction[active], 1)[0]
    assert slope_d == pytest.approx(1.0, abs=0.12)
    # survival says little about the latent churn effect (too little for a slope test), but survivors
    # lean towards the loyal side
    assert ot.posterior_mean(latent)[active].mean() < 0
