"""Reason codes: the features that push a customer's churn risk up, in words an agent can say.

Contributions are XGBoost's exact SHAP values (log-odds) for the customer's own feature values; only
positive ones become reasons, largest first, each with the phrase, the feature, its value and the
contribution. The batch scorer and the API share this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

from spanishgas.feature_registry import CONTACT_LOOKBACK_DAYS, features


@dataclass(frozen=True)
class Reason:
    """One reason code."""

    phrase: str
    feature: str
    value: float
    contribution: float


def _times(n: float) -> str:
    n = int(round(n))
    return "once" if n == 1 else f"{n} times"


def _months_to_renewal(v: float) -> str:
    if v < 0:
        months = max(1, int(round(-v)))
        return f"contract expired {months} month{'s' if months > 1 else ''} ago without renewal"
    if v < 2:
        return f"contract renews in {max(1, int(round(v * 4.35)))} weeks"
    return f"contract renews in {int(round(v))} months"


def _window(feature: str) -> str:
    days = feature.rsplit("_", 1)[-1].removesuffix("d")
    return f"the last {days} days"


def _flag(text: str) -> Callable[[str, float], str | None]:
    """A yes/no feature: its phrase is true only when the flag is set."""
    return lambda f, v: text if v >= 0.5 else None


def _events(describe: Callable[[str, float], str]) -> Callable[[str, float], str | None]:
    """A count of events: nothing to say when none happened."""
    return lambda f, v: describe(f, v) if round(v) >= 1 else None


def _days_ago(describe: str) -> Callable[[str, float], str | None]:
    """A recency feature: nothing to say when no such contact happened in the year looked at (999), nor
    at a value gold cannot produce (a what-if outside 1-365 days)."""
    return lambda f, v: f"{describe} {int(round(v))} days ago" if 1 <= round(v) <= CONTACT_LOOKBACK_DAYS else None


def _severity(v: float) -> str | None:
    # 3 cancellation, 2 complaint, 1 billing/pricing/renewal, 0 other (silver's intent severity)
    level = int(round(v))
    if level >= 3:
        return "mentioned cancelling in the last 180 days"
    if level == 2:
        return "complained in the last 180 days"
    if level == 1:
        return "called about billing, prices or the renewal in the last 180 days"
    return None


def _tenure(v: float) -> str:
    months = int(round(v))
    if months < 24:
        return f"customer for {months} month{'s' if months != 1 else ''}"
    return f"customer for {months // 12} years"


# Phrases for the features agents can act on; any other feature falls back to its documented meaning.
# A phrase is None when it would not be true at the customer's value (a flag not set, no events): the
# model may still find that value raises the risk, but an agent cannot say it to the customer.
PHRASES: dict[str, Callable[[str, float], str | None]] = {
    "months_to_renewal": lambda f, v: _months_to_renewal(v),
    "renewal_bucket_0_3m": _flag("renewal is less than 3 months away"),
    "renewal_bucket_expired": _flag("contract has expired without renewal"),
    "tenure_months": lambda f, v: _tenure(v),
    "tenure_under_1y": _flag("customer for less than a year"),
    "complaints_90d": _events(lambda f, v: f"complained {_times(v)} in {_window(f)}"),
    "complaints_180d": _events(lambda f, v: f"complained {_times(v)} in {_window(f)}"),
    "complaints_365d": _events(lambda f, v: f"complained {_times(v)} in {_window(f)}"),
    "cancellation_intent_90d": _events(lambda f, v: f"mentioned cancelling in {_window(f)}"),
    "cancellation_intent_180d": _events(lambda f, v: f"mentioned cancelling in {_window(f)}"),
    "contacts_30d": _events(lambda f, v: f"contacted us {_times(v)} in {_window(f)}"),
    "contacts_90d": _events(lambda f, v: f"contacted us {_times(v)} in {_window(f)}"),
    "contacts_180d": _events(lambda f, v: f"contacted us {_times(v)} in {_window(f)}"),
    "contacts_365d": _events(lambda f, v: f"contacted us {_times(v)} in {_window(f)}"),
    "days_since_last_contact": _days_ago("last contacted us"),
    "days_since_last_complaint": _days_ago("complained"),
    "days_since_last_cancellation_intent": _days_ago("mentioned cancelling"),
    "days_since_last_negative_contact": _days_ago("was unhappy in a contact"),
    "days_since_last_positive_contact": _days_ago("was pleased in a contact"),
    "negative_contacts_180d": _events(lambda f, v: f"was unhappy {_times(v)} when in touch in the last 180 days"),
    "sentiment_last": lambda f, v: "last call ended on a negative note" if v < 0 else "tone of the last call",
    "max_intent_severity_180d": lambda f, v: _severity(v),
    "price_vs_segment_last": lambda f, v: f"pays {abs(v):.0%} {'above' if v >= 0 else 'below'} similar customers",
    "price_vs_cost_last": lambda f, v: f"price is {abs(v):.0%} {'above' if v >= 0 else 'below'} the province cost",
    "price_trend_3m": lambda f, v: f"price {'rose' if v >= 0 else 'fell'} {abs(v):.0%} in the last 3 months",
    "price_trend_6m": lambda f, v: f"price {'rose' if v >= 0 else 'fell'} {abs(v):.0%} in the last 6 months",
    "price_trend_12m": lambda f, v: f"price {'rose' if v >= 0 else 'fell'} {abs(v):.0%} in the last 12 months",
    "price_increase_3m": _flag("had a price rise of 3 % or more in the last 3 months"),
    "is_high_competition_province": _flag("lives where rival retailers compete hard"),
    "is_channel_comparison": _flag("signed up through a comparison website"),
    "near_renewal_x_high_competition": _flag("renewal is near and rivals compete hard locally"),
    "near_renewal_x_price_increase": _flag("renewal is near right after a price rise"),
    "near_renewal_x_negative_contact": _flag("renewal is near after an unhappy call"),
    "complaint_x_high_competition": _flag("complained recently where rivals compete hard"),
    "new_customer_x_comparison": _flag("new customer who came from a comparison website"),
    "expired_x_high_competition": _flag("contract expired where rivals compete hard"),
    "contact_near_renewal": _flag("called us with the renewal under 3 months away"),
}


def phrase(feature: str, value: float) -> str | None:
    """The agent's words for a feature at a value; None when the feature's phrase would not be true at
    that value (a flag not set, no events), so it cannot be given as a reason."""
    if np.isnan(value):
        return f"{_meaning(feature)}: not known"
    if feature in PHRASES:
        return PHRASES[feature](feature, value)
    return f"{_meaning(feature)}: {value:.4g}"


@cache
def _meaning(feature: str) -> str:
    """The feature's documented meaning (looked up once per feature: the API explains on its hot path)."""
    return {f.name: f.meaning for f in features()}.get(feature, feature.replace("_", " "))


def reasons_for_row(
    feature_names: list[str], values: np.ndarray, contributions: np.ndarray, top: int = 3
) -> list[Reason]:
    """The ``top`` features with the largest positive contributions of one row that can be said in words."""
    order = np.argsort(-contributions, kind="stable")
    out: list[Reason] = []
    for i in order:
        if contributions[i] <= 0 or len(out) == top:
            break
        value = float(values[i])
        words = phrase(feature_names[i], value)
        if words is not None:  # a reason the agent could not truthfully say is left out
            out.append(Reason(words, feature_names[i], value, float(contributions[i])))
    return out
