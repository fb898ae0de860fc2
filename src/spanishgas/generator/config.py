"""Configuration of the synthetic SpanishGas generator and its planted churn drivers.

Every number that shapes the synthetic world is here, named, so that ``docs/generator.md`` can document
it and tests can refer to it. The churn model is a monthly logistic hazard; its coefficients are on the
log-odds scale and are deliberately moderate, so no single observable identifies churners.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import IntEnum, StrEnum
from pathlib import Path


class Dirtiness(IntEnum):
    """How much of the real delivery's dirt the generator plants."""

    CLEAN = 0
    AS_DELIVERED = 1  # negative readings, zero prices, blank ids, duplicates: like the real files
    HARSH = 2  # plus malformed lines and records, unknown customers, DST clock artifacts


class Scenario(StrEnum):
    """Shifts applied from ``scenario_start`` on, for drift monitoring."""

    NONE = "none"
    PRICE_SHOCK = "price_shock"  # wholesale costs and customer prices jump in a few provinces
    NEW_CHANNEL = "new_channel"  # new customers arrive mostly through the own website


@dataclass(frozen=True)
class HazardCoefficients:
    """Planted drivers of the monthly churn hazard (log-odds)."""

    # months to renewal at the start of the month: [0,1), [1,3), [3,6), [6,12), expired
    renewal_this_month: float = 1.8
    renewal_1_3_months: float = 1.0
    renewal_3_6_months: float = 0.0
    renewal_6_12_months: float = -1.1
    renewal_expired: float = 0.9
    high_competition: float = 0.68
    tenure_under_1y: float = 0.65
    tenure_1_2y: float = 0.55
    tenure_2_5y: float = 0.35
    tenure_5y_plus: float = -0.55
    dual_fuel: float = -0.30
    second_residence: float = 0.10
    sme: float = -0.10
    corporate: float = 0.0
    channel: dict[str, float] = field(
        default_factory=lambda: {
            "presencial_comercial": 0.25,
            "oficina": 0.15,
            "telemarketing": 0.0,
            "desconocido": -0.05,
            "comparador": -0.30,
            "web_propia": -0.35,
        }
    )
    # price premium over the province's energy cost, standardized within segment
    price_premium_per_sd: float = 0.35
    # tier-1 price rose by 3 % or more within the last three months
    recent_price_increase: float = 0.60
    # contacts in the window (days) before the month starts
    contact_window_days: int = 180
    complaint_each: float = 1.0
    complaint_cap: int = 2
    cancellation_intent: float = 1.80
    negative_contact: float = 1.0
    positive_contact: float = -0.35
    # calling at all signals a customer weighing options, whatever the tone
    any_contact: float = 1.45
    # unobservable customer heterogeneity, N(0, sd): keeps the truth out of any model's reach
    latent_sd: float = 0.35
    # price shock scenario: extra log-odds in shocked provinces
    price_shock: float = 0.40


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything one run of ``spanishgas generate`` needs."""

    customers: int = 2_000
    start: date = date(2023, 1, 1)
    end: date = date(2024, 12, 31)
    seed: int = 42
    out_dir: Path = Path("data/raw")
    truth_dir: Path = Path("data/truth")
    dirtiness: Dirtiness = Dirtiness.AS_DELIVERED
    scenario: Scenario = Scenario.NONE
    scenario_start: date | None = None
    # write only what happens from this day on (incremental drops); None means from ``start``
    emit_from: date | None = None
    label_horizon_days: int = 90
    # futures drawn per customer and as-of date for the best-possible probability (``p_observable``)
    truth_replicates: int = 64
    annual_churn_rate: float = 0.0996
    # new customers per month after the first year, as a share of ``customers``
    monthly_acquisition_rate: float = 0.008
    workers: int = 2
    customers_per_block: int = 1024
    hazard: HazardCoefficients = field(default_factory=HazardCoefficients)

    def __post_init__(self) -> None:
        if self.customers < 10:
            raise ValueError("customers must be at least 10")
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if self.emit_from is not None and not self.start <= self.emit_from <= self.end:
            raise ValueError(f"emit_from {self.emit_from} must lie within {self.start}..{self.end}")
        if self.scenario is not Scenario.NONE and self.scenario_start is None:
            raise ValueError("a scenario needs scenario_start")

    @property
    def first_emitted_day(self) -> date:
        """First day whose events are written."""
        return self.emit_from or self.start
