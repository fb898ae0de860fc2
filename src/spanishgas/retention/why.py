"""Why each customer got the action they got: the rule or guardrail that decided it, the figures behind it,
what the agent may still do at no cost, and the internal figures the agent sees but does not say.

One function serves the batch plan and the API (the same inputs give the same explanation). The rules, in
the order they decide:

1. ``blocked_flag``: a blocking flag is set (churned, regulated tariff): no offer may be made.
2. ``no_reasons``: nothing in the customer's data raises the risk in words: an offer would have no reason.
3. ``no_margin``: the customer earns no margin: no offer can pay for itself.
4. ``no_offer_pays``: the best action's expected retained margin does not cover its cost.
5. ``budget_exhausted``: an offer pays for itself, but the plan's budget went to offers worth more per euro.
6. ``offer_pays``: the chosen offer keeps more margin than it costs (the best value when the budget does
   not bind); with notes when its cost is capped by policy or the renewal makes it urgent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from spanishgas.i18n import Language, Message, Number, message
from spanishgas.retention.offers import BLOCKING_FLAGS, NO_OFFER, Policy, ValueMatrix, flag_array

RULES = ("blocked_flag", "no_reasons", "no_margin", "no_offer_pays", "budget_exhausted", "offer_pays")
# The features the no-cost suggestions look at (missing ones count as "not the case").
FREE_ACTION_FEATURES = (
    "complaints_180d",
    "days_since_last_complaint",
    "months_to_renewal",
    "pricing_contacts_180d",
    "price_increase_3m",
    "billing_contacts_180d",
)
COMPLAINT_FOLLOW_UP_DAYS = 180


@dataclass(frozen=True)
class Decision:
    """One customer's explanation, language-neutral until rendered."""

    rule: str
    action: str  # the action the decision is about: the chosen offer, or the best one considered
    why: Message
    also: tuple[Message, ...]
    free_actions: tuple[Message, ...]
    notes: tuple[Message, ...]
    figures: dict[str, float]

    def rendered(self, lang: Language) -> dict[str, Any]:
        """The explanation in ``lang``: why, further notes, no-cost actions and the agent's notes."""
        return {
            "rule": self.rule,
            "why": self.why.render(lang),
            "also": [m.render(lang) for m in self.also],
            "free_actions": [m.render(lang) for m in self.free_actions],
            "agent_notes": [m.render(lang) for m in self.notes],
        }


def action_name(action: str) -> Message:
    """An action in the agent's words ("a service call")."""
    return message(f"action.{action}")


def explain(
    plan: np.ndarray,
    values: ValueMatrix,
    policy: Policy,
    probability: np.ndarray,
    reason_count: np.ndarray,
    monthly_margin: np.ndarray,
    flags: dict[str, Any],
    context: dict[str, np.ndarray],
    budget_eur: float | None = None,
) -> list[Decision]:
    """Why each customer got the planned action (``plan``: one action per row of ``values``)."""
    margin = np.nan_to_num(np.asarray(monthly_margin, dtype=float), nan=0.0)
    flag_sets = {name: flag_array(v) for name, v in flags.items() if name in BLOCKING_FLAGS}
    offers = [j for j, name in enumerate(values.actions) if name != NO_OFFER]
    best = np.asarray(offers)[values.value[:, offers].argmax(axis=1)]
    chosen = {name: j for j, name in enumerate(values.actions)}
    capped = _capped(values, policy, margin)
    loss = np.asarray(probability, dtype=float) * np.maximum(margin, 0.0)
    out = []
    for i, action in enumerate(np.asarray(plan)):
        j = chosen[action] if action != NO_OFFER else int(best[i])
        figures = {
            "action_cost_eur": round(float(values.cost[i, j]), 2),
            "expected_retained_margin_eur": round(float(values.retained[i, j]), 2),
            "expected_value_eur": round(float(values.value[i, j]), 2),
            "monthly_margin_eur": round(float(margin[i]), 2),
        }
        blocked = next((name for name, set_ in flag_sets.items() if set_[i]), None)
        rule, why, also = _rule(action, values.actions[j], figures, blocked, int(reason_count[i]), budget_eur)
        if action != NO_OFFER:
            also = (*also, *_offer_notes(policy, bool(capped[i, j]), _at(context, "months_to_renewal", i)))
        out.append(
            Decision(
                rule,
                values.actions[j],
                why,
                also,
                _free_actions(context, i),
                _agent_notes(figures, float(loss[i]), action),
                figures,
            )
        )
    return out


def _rule(
    action: str, best: str, figures: dict[str, float], blocked: str | None, reasons: int, budget: float | None
) -> tuple[str, Message, tuple[Message, ...]]:
    cost, kept = Number(figures["action_cost_eur"], "eur"), Number(figures["expected_retained_margin_eur"], "eur")
    if action != NO_OFFER:
        net = Number(figures["expected_value_eur"], "eur")
        return "offer_pays", message("why.offer_pays", action=action_name(action), cost=cost, kept=kept, net=net), ()
    if blocked is not None:
        return "blocked_flag", message("why.blocked_flag", flag=message(f"flag.{blocked}")), ()
    if reasons == 0:
        return "no_reasons", message("why.no_reasons"), ()
    if figures["monthly_margin_eur"] <= 0:
        return "no_margin", message("why.no_margin", margin=Number(figures["monthly_margin_eur"], "eur")), ()
    if figures["expected_value_eur"] <= 0:
        return "no_offer_pays", message("why.no_offer_pays", action=action_name(best), cost=cost, kept=kept), ()
    budget_words = Number(budget or 0.0, "eur")
    why = message("why.budget_exhausted", action=action_name(best), cost=cost, kept=kept, budget=budget_words)
    return "budget_exhausted", why, ()


def _capped(values: ValueMatrix, policy: Policy, margin: np.ndarray) -> np.ndarray:
    """Whether the policy's cap set each action's cost (rows: customers, columns: actions)."""
    horizon = np.maximum(margin, 0.0) * policy.margin_horizon_months
    out = np.zeros(values.cost.shape, dtype=bool)
    for j, name in enumerate(values.actions):
        a = policy.actions[name]
        out[:, j] = (name != NO_OFFER) & (a.fixed_cost_eur + a.margin_share * horizon > values.cost[:, j] + 1e-9)
    return out


def _offer_notes(policy: Policy, capped: bool, months_to_renewal: float) -> tuple[Message, ...]:
    notes = []
    if capped:
        share = Number(policy.max_offer_share_of_margin, "percent")
        notes.append(message("why.cost_capped", share=share, months=Number(policy.margin_horizon_months)))
    if months_to_renewal < policy.urgent_months:
        notes.append(message("why.renewal_urgent", months=Number(policy.urgent_months)))
    return tuple(notes)


def _at(context: dict[str, np.ndarray], name: str, i: int) -> float:
    column = context.get(name)
    if column is None:
        return float("nan")
    value = float(column[i])
    return value if np.isfinite(value) else float("nan")


def _free_actions(context: dict[str, np.ndarray], i: int) -> tuple[Message, ...]:
    """What the agent may do at no cost, from what the data say about the customer."""
    out = []
    complaints = _at(context, "complaints_180d", i) >= 1
    if complaints or _at(context, "days_since_last_complaint", i) <= COMPLAINT_FOLLOW_UP_DAYS:
        out.append(message("free.follow_up_complaint"))
    if _at(context, "months_to_renewal", i) < 3:  # NaN compares false: no renewal known, nothing to send
        out.append(message("free.send_renewal_terms"))
    if _at(context, "pricing_contacts_180d", i) >= 1 or _at(context, "price_increase_3m", i) >= 0.5:
        out.append(message("free.explain_tariff"))
    if _at(context, "billing_contacts_180d", i) >= 1:
        out.append(message("free.review_bills"))
    out.append(message("free.log_call"))
    return tuple(out)


def _agent_notes(figures: dict[str, float], monthly_loss: float, action: str) -> tuple[Message, ...]:
    """The internal figures, for the agent's eyes only (never among the reasons given to the customer)."""
    notes = [
        message("note.margin", margin=Number(figures["monthly_margin_eur"], "eur")),
        message("note.at_stake", loss=Number(monthly_loss, "eur")),
    ]
    if action != NO_OFFER:
        cost, kept = Number(figures["action_cost_eur"], "eur"), Number(figures["expected_retained_margin_eur"], "eur")
        notes.append(message("note.offer", cost=cost, kept=kept))
    return tuple(notes)
