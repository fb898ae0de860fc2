"""Recommended retention actions: a rules-only policy by risk tier, guardrails enforced in code, and an
expected-value optimizer that chooses at most one action per customer within a budget.

Expected value of an action for a customer = churn probability x retention effect of the action (for
the customer's segment archetype) x margin retained over the horizon - offer cost. Offer costs are a
fixed amount plus a share of the margin over the horizon (a discount), capped by policy.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import yaml

from spanishgas.errors import PlatformError

NO_OFFER = "no_offer"


class GuardrailViolation(PlatformError, ValueError):
    """A recommendation breaks a rule that must never be broken."""


@dataclass(frozen=True)
class Action:
    """One retention action and its assumed effect."""

    name: str
    fixed_cost_eur: float
    margin_share: float
    retention_effect: dict[str, float]

    def effect(self, archetype: str) -> float:
        """Share of would-be churners this action keeps in a segment archetype."""
        return float(self.retention_effect.get(archetype, self.retention_effect["default"]))


@dataclass(frozen=True)
class Policy:
    """The retention policy of ``resources/retention_policy.yaml``."""

    margin_horizon_months: int
    max_offer_share_of_margin: float
    actions: dict[str, Action]
    rules: dict[str, dict[str, str]]
    urgent_months: float

    def cost(self, action: str, monthly_margin: np.ndarray) -> np.ndarray:
        """Cost in euros of an action for customers with these monthly margins (capped by policy)."""
        a = self.actions[action]
        horizon_margin = np.maximum(monthly_margin, 0.0) * self.margin_horizon_months
        raw = a.fixed_cost_eur + a.margin_share * horizon_margin
        return np.where(action == NO_OFFER, 0.0, np.minimum(raw, self.max_offer_share_of_margin * horizon_margin))


@lru_cache(maxsize=1)
def load_policy() -> Policy:
    """The packaged retention policy."""
    raw = yaml.safe_load(resources.files("spanishgas.resources").joinpath("retention_policy.yaml").read_text())
    actions = {name: Action(name=name, **spec) for name, spec in raw["actions"].items()}
    for tier, rule in raw["rules"].items():
        if rule["action"] not in actions:
            raise ValueError(f"rule for {tier} names unknown action {rule['action']}")
    return Policy(
        raw["margin_horizon_months"],
        raw["max_offer_share_of_margin"],
        actions,
        raw["rules"],
        float(raw["urgent_if_months_to_renewal_below"]),
    )


# Flags that forbid any offer when set (honoured when the data carry them).
BLOCKING_FLAGS = ("is_churned", "is_regulated")


def flag_array(values: Any) -> np.ndarray:
    """A yes/no flag column as booleans, missing values counting as no."""
    return np.array([bool(v) and v == v for v in values], dtype=bool)  # v == v is False for NaN


def eligible(frame: pd.DataFrame) -> np.ndarray:
    """Customers who may receive an offer: not churned, not regulated, with reasons and a positive margin."""
    flags = {c: frame[c].to_numpy() for c in BLOCKING_FLAGS if c in frame}
    return eligible_arrays(frame["reason_count"].to_numpy(), frame["expected_monthly_margin_eur"].to_numpy(), flags)


def eligible_arrays(reason_count: np.ndarray, monthly_margin: np.ndarray, flags: dict[str, Any]) -> np.ndarray:
    """:func:`eligible` on arrays (one entry per customer)."""
    ok = np.asarray(reason_count) > 0
    ok &= np.nan_to_num(np.asarray(monthly_margin, dtype=float), nan=0.0) > 0
    for values in flags.values():
        ok &= ~flag_array(values)
    return ok


@dataclass(frozen=True)
class ValueMatrix:
    """Retained margin, cost and net value of every action (columns) for every customer (rows)."""

    actions: list[str]
    retained: np.ndarray
    cost: np.ndarray

    @property
    def value(self) -> np.ndarray:
        """Net expected value."""
        return self.retained - self.cost

    def pick(self, matrix: np.ndarray, plan: pd.Series | np.ndarray) -> np.ndarray:
        """One entry per customer: the column of the customer's planned action."""
        column = {a: j for j, a in enumerate(self.actions)}
        idx = np.array([column[a] for a in np.asarray(plan)], dtype=int)
        return matrix[np.arange(len(idx)), idx]


def value_matrix(frame: pd.DataFrame, policy: Policy) -> ValueMatrix:
    """Expected values of every action for every customer, vectorized."""
    archetypes = frame["segment_archetype"].to_numpy() if "segment_archetype" in frame else None
    return value_matrix_arrays(
        frame["churn_probability"].to_numpy(dtype=float),
        frame["expected_monthly_margin_eur"].to_numpy(dtype=float),
        archetypes,
        policy,
    )


def value_matrix_arrays(
    probability: np.ndarray, monthly_margin: np.ndarray, archetypes: Any, policy: Policy
) -> ValueMatrix:
    """:func:`value_matrix` on arrays; ``archetypes`` None means every customer is "default"."""
    p = np.asarray(probability, dtype=float)
    margin = np.nan_to_num(np.asarray(monthly_margin, dtype=float), nan=0.0)
    horizon_margin = np.maximum(margin, 0.0) * policy.margin_horizon_months
    names = list(policy.actions)
    retained, cost = np.zeros((len(p), len(names))), np.zeros((len(p), len(names)))
    for j, name in enumerate(names):
        action = policy.actions[name]
        default = action.retention_effect["default"]
        if archetypes is None:
            effect = np.full(len(p), default)
        else:
            effect = np.array([action.retention_effect.get(a, default) for a in archetypes], dtype=float)
        retained[:, j] = p * effect * horizon_margin
        cost[:, j] = policy.cost(name, margin)
    return ValueMatrix(names, retained, cost)


def expected_values(frame: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Expected retained margin, cost and net value of every action for every customer."""
    m = value_matrix(frame, policy)
    out = {}
    for j, name in enumerate(m.actions):
        out[(name, "retained")] = m.retained[:, j]
        out[(name, "cost")] = m.cost[:, j]
        out[(name, "value")] = m.value[:, j]
    return pd.DataFrame(out, index=frame.index)


def timing(tier: str, months_to_renewal: float, policy: Policy) -> str:
    """When to act on an offer: immediately when the renewal is close, else the tier's window (the least
    urgent window for a low-tier customer the optimizer chose to contact)."""
    if months_to_renewal < policy.urgent_months:
        return "immediate"
    window = policy.rules[tier]["timing"]
    return "60-90 days" if window == "none" else window


def rules_plan(frame: pd.DataFrame, policy: Policy, values: ValueMatrix | None = None) -> pd.Series:
    """The rules-only policy: the tier's action for eligible customers whose action has positive value."""
    m = values or value_matrix(frame, policy)
    actions = rules_actions(frame["risk_tier"].to_numpy(), eligible(frame), policy, m)
    return pd.Series(actions, index=frame.index, name="action")


def rules_actions(tiers: Any, eligible_mask: np.ndarray, policy: Policy, values: ValueMatrix) -> np.ndarray:
    """:func:`rules_plan` on arrays."""
    actions = np.array([policy.rules[t]["action"] for t in tiers], dtype=object)
    keep = eligible_mask & (values.pick(values.value, actions) > 0)
    return np.where(keep, actions, NO_OFFER).astype(object)


def best_actions(eligible_mask: np.ndarray, values: ValueMatrix) -> np.ndarray:
    """Each customer's best-value action when the budget does not bind: the offer with the highest
    positive expected value for an eligible customer, else no offer. This is what :func:`optimize` chooses
    with an unlimited budget (the top of each customer's hull), computed at once; the API recommends it."""
    offers = [j for j, name in enumerate(values.actions) if name != NO_OFFER]
    value = values.value[:, offers]
    names = np.array([values.actions[j] for j in offers], dtype=object)
    pays = np.asarray(eligible_mask, dtype=bool) & (value.max(axis=1) > 0)
    return np.where(pays, names[value.argmax(axis=1)], NO_OFFER).astype(object)


def threshold_plan(frame: pd.DataFrame, policy: Policy, action: str = "medium_discount") -> pd.Series:
    """ "Offer everyone above the decision threshold" the same discount (the naive comparison)."""
    ok = eligible(frame) & frame["above_threshold"].to_numpy()
    return pd.Series(np.where(ok, action, NO_OFFER), index=frame.index, name="action")


def optimize(frame: pd.DataFrame, policy: Policy, budget_eur: float, values: ValueMatrix | None = None) -> pd.Series:
    """At most one action per customer maximizing total expected value within ``budget_eur``.

    Greedy by value per euro over every (customer, action) with positive value, upgrading a customer's
    action when the extra value per extra euro is the best remaining use of the budget. This is the
    classic greedy for the multiple-choice knapsack on its convex hull: exact when the budget falls on an
    item boundary, and within one item's value of the optimum otherwise (an exact solver buys little with
    20,000 customers and euros-sized items; ADR 0006)."""
    m = values or value_matrix(frame, policy)
    value, cost = m.value, m.cost
    offers = [j for j, n in enumerate(m.actions) if n != NO_OFFER]
    candidates: list[tuple[float, int, str, float]] = []
    for i in np.flatnonzero(eligible(frame) & (value[:, offers].max(axis=1) > 0)):
        options = sorted((cost[i, j], value[i, j], m.actions[j]) for j in offers if value[i, j] > 0)
        # The customer's upper convex hull of (cost, value), from no offer upwards.
        hull: list[tuple[float, float, str]] = [(0.0, 0.0, NO_OFFER)]
        for c, v, name in options:
            if v <= hull[-1][1]:
                continue
            while len(hull) >= 2:
                (c1, v1, _), (c2, v2, _) = hull[-2], hull[-1]
                if (v2 - v1) * (c - c1) <= (v - v1) * (c2 - c1):
                    hull.pop()
                else:
                    break
            hull.append((c, v, name))
        for (c0, v0, _), (c1, v1, name) in itertools.pairwise(hull):
            extra_cost = c1 - c0
            ratio = (v1 - v0) / extra_cost if extra_cost > 0 else float("inf")
            candidates.append((ratio, int(i), name, extra_cost))
    candidates.sort(key=lambda c: (-c[0], c[1]))
    chosen = np.array([NO_OFFER] * len(frame), dtype=object)
    spent = 0.0
    blocked: set[int] = set()
    for _, i, name, extra_cost in candidates:
        if i in blocked:
            continue
        if spent + extra_cost > budget_eur:
            blocked.add(i)  # a later, pricier step of the same customer must not skip this one
            continue
        spent += extra_cost
        chosen[i] = name
    return pd.Series(chosen, index=frame.index, name="action")


def plan_summary(
    frame: pd.DataFrame, plan: pd.Series, policy: Policy, values: ValueMatrix | None = None
) -> dict[str, Any]:
    """Customers offered, cost, expected retained margin and net expected value of a plan."""
    m = values or value_matrix(frame, policy)
    cost, retained = m.pick(m.cost, plan), m.pick(m.retained, plan)
    return {
        "customers_offered": int((plan != NO_OFFER).sum()),
        "cost_eur": round(float(cost.sum()), 2),
        "expected_retained_margin_eur": round(float(retained.sum()), 2),
        "expected_value_eur": round(float((retained - cost).sum()), 2),
        "by_action": {k: int(v) for k, v in plan.value_counts().items()},
    }


def check_guardrails(recommendations: pd.DataFrame) -> None:
    """Refuse a set of recommendations that breaks a guardrail."""
    check_guardrail_arrays(
        recommendations["action"].to_numpy(),
        recommendations["churn_probability"].to_numpy(dtype=float),
        recommendations["expected_margin_impact_eur"].to_numpy(dtype=float),
        recommendations["reason_count"].to_numpy(),
        {c: recommendations[c].to_numpy() for c in BLOCKING_FLAGS if c in recommendations},
    )


def check_guardrail_arrays(
    actions: np.ndarray,
    probability: np.ndarray,
    margin_impact: np.ndarray,
    reason_count: np.ndarray,
    flags: dict[str, Any],
) -> None:
    """:func:`check_guardrails` on arrays."""
    offered = np.asarray(actions) != NO_OFFER
    p = np.asarray(probability, dtype=float)
    if (np.isnan(p) | (p < 0) | (p > 1)).any():
        raise GuardrailViolation("a churn probability is outside [0, 1]")
    bad = offered & (np.asarray(margin_impact, dtype=float) < 0)
    if bad.any():
        raise GuardrailViolation(f"{int(bad.sum())} offers have a negative expected margin impact")
    bad = offered & (np.asarray(reason_count) == 0)
    if bad.any():
        raise GuardrailViolation(f"{int(bad.sum())} offers carry no reason codes")
    for column, values in flags.items():
        bad = offered & flag_array(values)
        if bad.any():
            raise GuardrailViolation(f"{int(bad.sum())} offers go to customers flagged {column}")
