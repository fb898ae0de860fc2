"""An independent check that a reason's English phrase is true at the customer's value: each feature
belongs to a family with a stated truth condition (a flag is said only when set, a count says its count,
a trend says its direction and size, ...), written here apart from the phrase rules they check. Shared by
the unit grid walk and the integration walk over a real score table."""

from __future__ import annotations

import math
import re

FALLBACK = re.compile(r":\s*-?[\d.,]+\s*$|: not known")
FLAGS = {
    "renewal_bucket_expired", "renewal_bucket_0_3m", "renewal_bucket_3_6m", "renewal_bucket_6_12m",
    "tenure_under_1y", "tenure_5y_plus", "is_sme", "is_corporate", "is_second_residence",
    "is_high_competition_province", "is_channel_in_person", "is_channel_office", "is_channel_telemarketing",
    "is_channel_comparison", "is_channel_own_web", "price_increase_3m", "cancellation_intent_90d",
    "cancellation_intent_180d", "contact_near_renewal", "near_renewal_x_high_competition",
    "near_renewal_x_price_increase", "near_renewal_x_negative_contact", "complaint_x_high_competition",
    "new_customer_x_comparison", "expired_x_high_competition",
}  # fmt: skip
EITHER_FLAGS = {"is_urban", "is_dual_fuel"}
COUNTS = {
    "contacts_30d", "contacts_90d", "contacts_180d", "contacts_365d", "complaints_90d", "complaints_180d",
    "complaints_365d", "billing_contacts_180d", "pricing_contacts_180d", "negative_contacts_180d",
    "positive_contacts_180d", "price_increases_12m", "negative_reading_hours_12m",
}  # fmt: skip
DAYS_SINCE = {
    "days_since_last_contact", "days_since_last_complaint", "days_since_last_cancellation_intent",
    "days_since_last_negative_contact", "days_since_last_positive_contact",
}  # fmt: skip
SIGNED_CHANGES = {"price_trend_3m", "price_trend_6m", "price_trend_12m", "price_vs_segment_last", "elec_trend_3m"}
SHARES = {"peak_share_12m", "gas_share_12m", "negative_share_365d", "elec_volatility_12m"}
AMOUNTS = {"elec_kwh_avg_3m": 0, "elec_kwh_avg_12m": 0, "gas_kwh_avg_12m": 0, "contracted_power_kw": 1}
PRICES = {"price_tier1_last", "price_volatility_6m", "price_volatility_12m"}
SENTIMENT = {"sentiment_mean_180d", "sentiment_mean_365d", "sentiment_last"}
UP_WORDS, DOWN_WORDS = ("rose", "more"), ("fell", "less")
STEADY_WORDS = ("not changed", "about the same", "as much")


def _numbers(text: str) -> list[float]:
    return [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)]


def _says_about(text: str, value: float, digits: int) -> bool:
    """The text carries ``value`` written to ``digits`` decimals (either rounding of a half)."""
    return any(abs(x - value) <= 0.5 * 10**-digits + 1e-9 for x in _numbers(text))


def _says_count(text: str, n: int) -> bool:
    return ("once" in text or "1 " in text) if n == 1 else n in _numbers(text)


def false_because(feature: str, value: float, text: str | None) -> str | None:
    """Why ``text`` is not a true, sayable English phrase for ``feature`` at ``value`` (None: it is, or no
    phrase was given where none is due)."""
    if text is None:
        return None
    if FALLBACK.search(text) or "{" in text:
        return "a fallback or an unfilled placeholder"
    if not math.isfinite(value):
        return "a phrase for a missing value"
    v, n = value, int(round(value))
    if feature in FLAGS:
        return None if v >= 0.5 else "a flag's phrase while the flag is not set"
    if feature in EITHER_FLAGS:
        negative = any(w in text for w in ("outside", "only"))
        return None if negative == (v < 0.5) else "the wrong side of a yes/no feature"
    if feature in COUNTS:
        if n >= 1:
            return None if _says_count(text, n) else f"does not say the count {n}"
        return None if n == 0 and (" no " in f" {text} " or "not" in text) else "a count's phrase at no events"
    if feature in DAYS_SINCE:
        if 1 <= n <= 365:
            return None if n in _numbers(text) and "ago" in text else f"does not say {n} days ago"
        return None if n > 365 and "last year" in text else "a recency phrase outside the year looked at"
    if feature in SIGNED_CHANGES:
        if abs(v) < 0.005:
            return None if any(w in text for w in STEADY_WORDS) else "a change where there is none"
        words = UP_WORDS if v > 0 else DOWN_WORDS
        if not any(f" {w} " in f" {text} " for w in words):
            return "the wrong direction"
        return None if _says_about(text, abs(v) * 100, 0) else f"does not say {abs(v) * 100:.0f} %"
    if feature in SHARES:
        if not 0 <= v <= 1 and feature != "elec_volatility_12m":
            return "a share outside 0-1"
        said = _says_about(text, v * 100, 0) or (round(v * 100) == 0 and "no " in text)
        return None if said else f"does not say {v * 100:.0f} %"
    if feature in AMOUNTS:
        if v < 0:
            return "an amount below zero"
        if v == 0:
            return None if " no " in f" {text} " else "an amount's phrase at zero"
        return None if _says_about(text, v, AMOUNTS[feature]) else f"does not say {v:.1f}"
    if feature in PRICES:
        if v < 0:
            return "a price below zero"
        return None if _says_about(text, v, 3) or round(v, 3) == 0 else f"does not say {v:.3f}"
    if feature in SENTIMENT:
        if abs(v) < 0.05:
            return "a tone for a neutral score"
        unhappy = any(w in text for w in ("negative", "unhappy"))
        return None if unhappy == (v < 0) else "the wrong tone"
    return _special(feature, v, n, text)


def _special(feature: str, v: float, n: int, text: str) -> str | None:
    if feature == "months_to_renewal":
        if v < 0:
            return None if "expired" in text and max(1, round(-v)) in _numbers(text) else "expiry"
        if v < 2:
            return None if "week" in text and max(1, round(v * 4.35)) in _numbers(text) else "weeks"
        return None if n in _numbers(text) and "month" in text else "months"
    if feature == "tenure_months":
        if n < 0:
            return "a negative tenure"
        if n < 24:
            return None if n in _numbers(text) and "month" in text else "tenure months"
        return None if n // 12 in _numbers(text) and "year" in text else "tenure years"
    if feature == "max_intent_severity_180d":
        expected = {1: "billing", 2: "complained", 3: "cancelling"}.get(min(n, 3))
        return None if expected and expected in text else "the wrong severity"
    return f"{feature} has no truth condition here: add its family"
