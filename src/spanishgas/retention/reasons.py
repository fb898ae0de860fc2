"""Reason codes: the features that push a customer's churn risk up, in words an agent can say.

Contributions are XGBoost's exact SHAP values (log-odds) for the customer's own feature values; only
positive ones become reasons, largest first, each with its message (rendered in Spanish or English from
the catalogs of :mod:`spanishgas.i18n`), the feature, its value and the contribution. The batch scorer
and the API share this module.

Every model feature is either *sayable*, with a rule that gives a message true at the customer's value
(or nothing at values where no true, useful sentence exists: a flag not set, no events, a missing value),
or *not sayable* (:data:`NOT_SAYABLE`: internal figures such as margins and costs, and technical counts),
in which case the next contribution is used. There is no fall back to a feature's description and a raw
number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from spanishgas.feature_registry import CONTACT_LOOKBACK_DAYS
from spanishgas.i18n import Language, Message, Number, message

# A change smaller than this (as a share) is "about the same".
STEADY_SHARE = 0.005
# VADER compound scores within this of zero are neutral (VADER's own convention).
NEUTRAL_SENTIMENT = 0.05


@dataclass(frozen=True)
class Reason:
    """One reason code: ``phrase`` is ``message`` rendered in the answer's language."""

    phrase: str
    feature: str
    value: float
    contribution: float
    message: Message | None = field(default=None, compare=False)


Rule = Callable[[float], Message | None]

# Why a feature is never given to the customer as a reason (the next contribution is used instead).
NOT_SAYABLE: dict[str, str] = {
    "margin_avg_3m": "internal figure: the utility's margin",
    "margin_avg_12m": "internal figure: the utility's margin",
    "margin_std_12m": "internal figure: the utility's margin",
    "margin_trend_3m": "internal figure: the utility's margin",
    "negative_margin_months_12m": "internal figure: the utility's margin",
    "price_vs_cost_last": "internal figure: price over the utility's energy cost",
    "province_elec_cost_last": "internal figure: the utility's energy cost",
    "price_months_12m": "technical: months with a price row in the data",
    "is_channel_unknown": "technical: a gap in the data, not something about the customer",
}


def _flag(key: str) -> Rule:
    """A yes/no feature: its message is true only when the flag is set."""
    return lambda v: message(key) if v >= 0.5 else None


def _either(when_set: str, when_not: str) -> Rule:
    """A yes/no feature with a true sentence either way."""
    return lambda v: message(when_set if v >= 0.5 else when_not)


def _events(key: str, days: int | None = None, none_key: str | None = None) -> Rule:
    """A count of events in a window: the count's message, or ``none_key`` (if any) when none happened."""

    def rule(v: float) -> Message | None:
        n = int(round(v))
        if n >= 1:
            return message(key, count=n, **({"days": Number(days)} if days else {}))
        if n == 0 and none_key:
            return message(none_key, **({"days": Number(days)} if days else {}))
        return None

    return rule


def _days_ago(key: str, none_key: str | None = None) -> Rule:
    """A recency feature: days ago within the year looked at; the 999 of "none in that year" says
    ``none_key`` (if any); values gold cannot produce (a what-if outside 1-365 days) say nothing."""

    def rule(v: float) -> Message | None:
        d = int(round(v))
        if 1 <= d <= CONTACT_LOOKBACK_DAYS:
            return message(key, count=d)
        if d > CONTACT_LOOKBACK_DAYS and none_key:
            return message(none_key)
        return None

    return rule


def _months_to_renewal(v: float) -> Message:
    if v < 0:
        return message("reason.renewal_expired_ago", count=max(1, int(round(-v))))
    if v < 2:
        return message("reason.renewal_in_weeks", count=max(1, int(round(v * 4.35))))
    return message("reason.renewal_in_months", count=int(round(v)))


def _tenure(v: float) -> Message | None:
    months = int(round(v))
    if months < 0:
        return None
    if months < 24:
        return message("reason.tenure_months", count=months)
    return message("reason.tenure_years", count=months // 12)


def _positive(key: str, unit: str, zero_key: str | None = None, name: str = "amount") -> Rule:
    """A non-negative amount: its message above zero, ``zero_key`` (if any) at zero."""

    def rule(v: float) -> Message | None:
        if v > 0:
            return message(key, **{name: Number(v, unit)})  # type: ignore[arg-type]
        if v == 0 and zero_key:
            return message(zero_key)
        return None

    return rule


def _share(key: str, zero_key: str | None = None) -> Rule:
    """A share between 0 and 1."""

    def rule(v: float) -> Message | None:
        if v > 1 or v < 0:
            return None
        if round(v * 100) == 0:
            return message(zero_key) if zero_key else None
        return message(key, share=Number(v, "percent"))

    return rule


def _change(up: str, down: str, steady: str, months: int) -> Rule:
    """A relative change over a window: up, down or about the same."""

    def rule(v: float) -> Message:
        if abs(v) < STEADY_SHARE:
            return message(steady, months=Number(months))
        return message(up if v > 0 else down, share=Number(abs(v), "percent"), months=Number(months))

    return rule


def _price_vs_peers(v: float) -> Message:
    if abs(v) < STEADY_SHARE:
        return message("reason.price_as_peers")
    return message("reason.price_above_peers" if v > 0 else "reason.price_below_peers", share=Number(abs(v), "percent"))


def _volatility(months: int) -> Rule:
    def rule(v: float) -> Message | None:
        if v < 0:
            return None
        if round(v, 3) == 0:
            return message("reason.price_steady", months=Number(months))
        return message("reason.price_volatile", amount=Number(v, "eur_kwh"), months=Number(months))

    return rule


def _severity(v: float) -> Message | None:
    # 3 cancellation, 2 complaint, 1 billing/pricing/renewal, 0 other (silver's intent severity)
    level = int(round(v))
    keys = {3: "reason.severity_cancel", 2: "reason.severity_complaint", 1: "reason.severity_billing"}
    return message(keys[min(level, 3)]) if level >= 1 else None


def _sentiment(negative: str, positive: str) -> Rule:
    def rule(v: float) -> Message | None:
        if v <= -NEUTRAL_SENTIMENT:
            return message(negative)
        if v >= NEUTRAL_SENTIMENT:
            return message(positive)
        return None  # neutral, or no contact at all (0): nothing true and useful to say

    return rule


SAYABLE: dict[str, Rule] = {
    # lifecycle
    "months_to_renewal": _months_to_renewal,
    "renewal_bucket_expired": _flag("reason.flag_renewal_expired"),
    "renewal_bucket_0_3m": _flag("reason.flag_renewal_0_3m"),
    "renewal_bucket_3_6m": _flag("reason.flag_renewal_3_6m"),
    "renewal_bucket_6_12m": _flag("reason.flag_renewal_6m_plus"),
    "tenure_months": _tenure,
    "tenure_under_1y": _flag("reason.flag_tenure_under_1y"),
    "tenure_5y_plus": _flag("reason.flag_tenure_5y_plus"),
    "is_sme": _flag("reason.flag_sme"),
    "is_corporate": _flag("reason.flag_corporate"),
    "is_second_residence": _flag("reason.flag_second_home"),
    "contracted_power_kw": _positive("reason.contracted_power", "kw", name="kw"),
    "is_high_competition_province": _flag("reason.flag_high_competition"),
    "is_urban": _either("reason.flag_urban", "reason.flag_not_urban"),
    "is_channel_in_person": _flag("reason.channel_in_person"),
    "is_channel_office": _flag("reason.channel_office"),
    "is_channel_telemarketing": _flag("reason.channel_telemarketing"),
    "is_channel_comparison": _flag("reason.channel_comparison"),
    "is_channel_own_web": _flag("reason.channel_own_web"),
    "is_dual_fuel": _either("reason.flag_dual_fuel", "reason.flag_single_fuel"),
    # market
    "elec_kwh_avg_3m": _positive("reason.elec_use_3m", "kwh", "reason.elec_none_3m", name="kwh"),
    "elec_kwh_avg_12m": _positive("reason.elec_use_12m", "kwh", "reason.elec_none_12m", name="kwh"),
    "gas_kwh_avg_12m": _positive("reason.gas_use_12m", "kwh", "reason.gas_none_12m", name="kwh"),
    "gas_share_12m": _share("reason.gas_share", "reason.gas_none_12m"),
    "peak_share_12m": _share("reason.peak_share", "reason.peak_none"),
    "price_tier1_last": _positive("reason.peak_price", "eur_kwh", name="price"),
    "price_vs_segment_last": _price_vs_peers,
    "price_trend_3m": _change("reason.price_rose", "reason.price_fell", "reason.price_unchanged", 3),
    "price_trend_6m": _change("reason.price_rose", "reason.price_fell", "reason.price_unchanged", 6),
    "price_trend_12m": _change("reason.price_rose", "reason.price_fell", "reason.price_unchanged", 12),
    "price_volatility_6m": _volatility(6),
    "price_volatility_12m": _volatility(12),
    "price_increases_12m": _events("reason.price_rises_12m", none_key="reason.price_no_rise_12m"),
    "price_increase_3m": _flag("reason.flag_price_rise_3m"),
    # risk
    "elec_volatility_12m": lambda v: None if v < 0 else message("reason.elec_varies", share=Number(v, "percent")),
    "elec_trend_3m": _change("reason.elec_up", "reason.elec_down", "reason.elec_steady", 3),
    "negative_reading_hours_12m": _events("reason.negative_readings"),
    # behaviour
    "contacts_30d": _events("reason.contacts", 30, "reason.no_contacts"),
    "contacts_90d": _events("reason.contacts", 90, "reason.no_contacts"),
    "contacts_180d": _events("reason.contacts", 180, "reason.no_contacts"),
    "contacts_365d": _events("reason.contacts", 365, "reason.no_contacts"),
    "days_since_last_contact": _days_ago("reason.last_contact_ago", "reason.no_contact_year"),
    "days_since_last_complaint": _days_ago("reason.last_complaint_ago"),
    "days_since_last_cancellation_intent": _days_ago("reason.last_cancel_ago"),
    "complaints_90d": _events("reason.complaints", 90),
    "complaints_180d": _events("reason.complaints", 180),
    "complaints_365d": _events("reason.complaints", 365),
    "cancellation_intent_90d": _flag("reason.cancel_90d"),
    "cancellation_intent_180d": _flag("reason.cancel_180d"),
    "billing_contacts_180d": _events("reason.billing_contacts", 180),
    "pricing_contacts_180d": _events("reason.pricing_contacts", 180),
    "max_intent_severity_180d": _severity,
    "contact_near_renewal": _flag("reason.flag_contact_near_renewal"),
    # sentiment
    "sentiment_mean_180d": _sentiment("reason.tone_negative_180d", "reason.tone_positive_180d"),
    "sentiment_mean_365d": _sentiment("reason.tone_negative_365d", "reason.tone_positive_365d"),
    "sentiment_last": _sentiment("reason.last_call_negative", "reason.last_call_positive"),
    "negative_contacts_180d": _events("reason.unhappy_contacts", 180),
    "positive_contacts_180d": _events("reason.pleased_contacts", 180),
    "days_since_last_negative_contact": _days_ago("reason.last_unhappy_ago"),
    "days_since_last_positive_contact": _days_ago("reason.last_pleased_ago"),
    "negative_share_365d": _share("reason.unhappy_share"),
    # compound
    "near_renewal_x_high_competition": _flag("reason.flag_near_renewal_competition"),
    "near_renewal_x_price_increase": _flag("reason.flag_near_renewal_price_rise"),
    "near_renewal_x_negative_contact": _flag("reason.flag_near_renewal_unhappy"),
    "complaint_x_high_competition": _flag("reason.flag_complaint_competition"),
    "new_customer_x_comparison": _flag("reason.flag_new_from_comparison"),
    "expired_x_high_competition": _flag("reason.flag_expired_competition"),
}


def reason_message(feature: str, value: float) -> Message | None:
    """The message for a feature at a value; None when the feature is not sayable, the value is missing,
    or nothing true and useful can be said at that value (the next contribution is used instead)."""
    if feature in NOT_SAYABLE or value is None or not math.isfinite(value):
        return None
    rule = SAYABLE.get(feature)
    return None if rule is None else rule(float(value))


def phrase(feature: str, value: float, lang: Language = "en") -> str | None:
    """The agent's words for a feature at a value in ``lang`` (None: see :func:`reason_message`)."""
    found = reason_message(feature, value)
    return None if found is None else found.render(lang)


def reasons_for_row(
    feature_names: list[str], values: np.ndarray, contributions: np.ndarray, top: int = 3, lang: Language = "en"
) -> list[Reason]:
    """The ``top`` features with the largest positive contributions of one row that can be said in words."""
    order = np.argsort(-contributions, kind="stable")
    out: list[Reason] = []
    for i in order:
        if contributions[i] <= 0 or len(out) == top:
            break
        value = float(values[i])
        found = reason_message(feature_names[i], value)
        if found is not None:  # a reason the agent could not truthfully say is left out
            out.append(Reason(found.render(lang), feature_names[i], value, float(contributions[i]), found))
    return out


def in_language(reasons: list[Reason], lang: Language) -> list[Reason]:
    """The same reasons with their phrases in ``lang``."""
    return [
        Reason(r.message.render(lang), r.feature, r.value, r.contribution, r.message) if r.message else r
        for r in reasons
    ]
