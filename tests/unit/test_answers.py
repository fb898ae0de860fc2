"""What agents read: both catalogs hold the same messages with the same placeholders; every feature any
experiment set can serve is sayable or marked not sayable; no phrase is a "<meaning>: <number>" fallback
or false at the value, over a grid of values; every recommendation says which rule decided it and why,
the same on the batch path and the API path."""

from __future__ import annotations

import dataclasses
import re
from importlib import resources

import pandas as pd
import pytest

from spanishgas.feature_registry import experiment_features, experiments, feature_names
from spanishgas.i18n import LANGUAGES, MissingMessage, Number, keys, message, negotiate, render
from spanishgas.retention.reasons import NOT_SAYABLE, SAYABLE, phrase, reason_message
from tests.reason_truth import false_because

pytestmark = pytest.mark.unit

GRID = [
    float("nan"), float("inf"), -float("inf"), -1e6, -400.0, -12.0, -3.2, -1.0, -0.5, -0.2, -0.04, -0.004,
    0.0, 0.001, 0.004, 0.03, 0.2915, 0.5, 0.51, 0.99, 1.0, 1.4, 2.0, 3.0, 3.7, 7.0, 12.0, 23.6, 30.0, 90.0,
    180.0, 364.6, 365.0, 366.0, 998.0, 999.0, 1000.0, 2500.0, 1e6,
]  # fmt: skip


def _po_entries(lang: str) -> dict[str, tuple[str, ...]]:
    from babel.messages.pofile import read_po

    path = resources.files("spanishgas.resources").joinpath("locale", lang, "LC_MESSAGES", "answers.po")
    catalog = read_po(path.open(encoding="utf-8"), locale=lang)
    out = {}
    for m in catalog:
        if not m.id:
            continue
        key = m.id[0] if isinstance(m.id, tuple) else m.id
        out[key] = tuple(m.string) if isinstance(m.string, tuple) else (m.string,)
    return out


def test_both_catalogs_hold_the_same_messages_with_the_same_placeholders() -> None:
    en, es = _po_entries("en"), _po_entries("es")
    assert set(en) == set(es), {"only in en": set(en) - set(es), "only in es": set(es) - set(en)}
    for key in en:
        assert all(en[key]) and all(es[key]), f"{key} is empty in a language"
        assert len(en[key]) == len(es[key]), f"{key}: plural forms differ"
        for a, b in zip(en[key], es[key], strict=True):
            assert set(re.findall(r"{(\w+)}", a)) == set(re.findall(r"{(\w+)}", b)), key
    assert keys("en") == keys("es") == set(en)


def test_a_key_missing_from_a_catalog_is_an_error_not_a_fallback() -> None:
    with pytest.raises(MissingMessage):
        render("es", message("reason.no_such_message"))
    with pytest.raises(MissingMessage):
        render("en", message("reason.no_such_message", count=2))


def test_every_message_the_code_names_is_in_the_catalogs() -> None:
    """The keys written in the answer modules (a literal such as "why.no_margin") all exist."""
    modules = ("reasons.py", "why.py", "story.py")
    source = "".join(resources.files("spanishgas.retention").joinpath(name).read_text() for name in modules)
    named = set(re.findall(r'"((?:reason|why|free|note|story)\.[a-z0-9_]+)"', source))
    assert named and named <= keys("en"), named - keys("en")
    from spanishgas.retention.offers import BLOCKING_FLAGS, load_policy

    assert {f"action.{a}" for a in load_policy().actions} <= keys("en")
    assert {f"flag.{f}" for f in BLOCKING_FLAGS} <= keys("en")


def test_every_servable_feature_is_sayable_or_marked_not_sayable() -> None:
    servable = set().union(*(experiment_features(name) for name in experiments()))
    assert servable <= set(feature_names())
    assert not set(SAYABLE) & set(NOT_SAYABLE)
    assert servable == set(SAYABLE) | set(NOT_SAYABLE), servable ^ (set(SAYABLE) | set(NOT_SAYABLE))
    assert all(NOT_SAYABLE.values())  # each says why


@pytest.mark.parametrize("feature", sorted(SAYABLE))
def test_no_phrase_is_a_fallback_or_false_at_the_value(feature: str) -> None:
    said = 0
    for value in GRID:
        english = phrase(feature, value, "en")
        assert false_because(feature, value, english) is None, (
            feature,
            value,
            english,
            false_because(feature, value, english),
        )
        spanish = phrase(feature, value, "es")
        assert (english is None) == (spanish is None), (feature, value)
        if english is None:
            continue
        said += 1
        assert "{" not in spanish and not re.search(r":\s*-?[\d.,]+\s*$", spanish)
        # the same figures in both languages (Spanish writes 0,213 and 1.235 where English writes 0.213, 1,235)
        digits = sorted(re.sub(r"[.,]", "", n) for n in re.findall(r"\d[\d.,]*\d|\d", english))
        assert digits == sorted(re.sub(r"[.,]", "", n) for n in re.findall(r"\d[\d.,]*\d|\d", spanish)), (
            english,
            spanish,
        )
    assert said, f"{feature} is sayable but said nothing over the whole grid"


@pytest.mark.parametrize("feature", sorted(NOT_SAYABLE))
def test_internal_and_technical_features_are_never_reasons(feature: str) -> None:
    assert all(reason_message(feature, v) is None for v in GRID)


def test_numbers_are_written_the_way_each_language_writes_them() -> None:
    assert (
        render("en", message("reason.peak_price", price=Number(0.2133, "eur_kwh")))
        == "pays 0.213 EUR per kWh at peak hours"
    )
    assert (
        render("es", message("reason.peak_price", price=Number(0.2133, "eur_kwh")))
        == "paga 0,213 EUR por kWh en horas punta"
    )
    assert phrase("peak_share_12m", 0.2915, "en") == "uses 29% of their electricity at peak hours, when it is dearest"
    assert (
        phrase("peak_share_12m", 0.2915, "es")
        == "consume el 29\xa0% de su electricidad en horas punta, cuando es más cara"
    )
    assert phrase("contacts_90d", 1, "es") == "nos contactó una vez en los últimos 90 días"
    assert phrase("contacts_90d", 4, "es") == "nos contactó 4 veces en los últimos 90 días"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "es"),
        ("", "es"),
        ("en", "en"),
        ("en-GB,en;q=0.9", "en"),
        ("fr-FR, en;q=0.5, es;q=0.8", "es"),
        ("de, fr", "es"),
        ("es-ES;q=0.2, en;q=0.9", "en"),
        ("en;q=0, es", "es"),
        ("en;q=oops", "es"),
    ],
)
def test_accept_language_picks_the_best_of_our_languages(header: str | None, expected: str) -> None:
    assert negotiate(header, "es") == expected
    assert set(LANGUAGES) == {"es", "en"}


def _book() -> pd.DataFrame:
    """One customer per rule (and a capped, urgent offer), with the columns the planner reads."""
    rows = [
        # (name, probability, tier, reasons, margin, churned, months to renewal, complaints, pricing contacts)
        ("blocked", 0.9, "critical", 3, 80.0, True, 5.0, 0, 0),
        ("silent", 0.9, "critical", 0, 80.0, False, 5.0, 0, 0),
        ("no margin", 0.9, "critical", 3, -2.0, False, 5.0, 0, 0),
        ("cheap", 0.30, "critical", 3, 3.89, False, 1.0, 1, 1),
        ("pays", 0.6, "critical", 3, 120.0, False, 1.0, 2, 0),
        ("pays too", 0.5, "critical", 3, 90.0, False, 8.0, 0, 0),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "customer_id", "churn_probability", "risk_tier", "reason_count", "expected_monthly_margin_eur",
            "is_churned", "months_to_renewal", "complaints_180d", "pricing_contacts_180d",
        ],
    )  # fmt: skip
    frame["above_threshold"] = True
    frame["segment_archetype"] = "default"
    return frame


def test_every_rule_explains_itself_with_its_figures_on_the_batch_and_the_api_path() -> None:
    from spanishgas.retention.offers import load_policy
    from spanishgas.retention.scoring import recommend, recommend_best_arrays
    from spanishgas.retention.why import RULES

    policy, book = load_policy(), _book()
    batch, summary = recommend(book, policy, None, "en")
    rules = dict(zip(book["customer_id"], batch["decision_rule"], strict=True))
    assert rules == {
        "blocked": "blocked_flag",
        "silent": "no_reasons",
        "no margin": "no_margin",
        "cheap": "no_offer_pays",
        "pays": "offer_pays",
        "pays too": "offer_pays",
    }
    why = dict(zip(book["customer_id"], batch["why"], strict=True))
    assert why["blocked"] == "no offer: the customer is marked as already gone, and marked customers get no offers"
    # a 3.89 EUR-a-month customer at 30 %: the least losing action is a small discount (2 EUR + 5 % of the
    # 12-month margin = 4.33 EUR) keeping 0.30 x 15 % x 46.68 EUR = 2.10 EUR
    assert why["cheap"] == (
        "no offer pays for itself: the best, a small discount, costs 4.33 EUR "
        "and is expected to keep 2.10 EUR of margin"
    )
    assert why["no margin"].startswith("no offer pays for itself: the customer brings -2.00 EUR of margin a month")
    pays = batch.set_index("customer_id").loc["pays"]
    assert why["pays"].startswith(f"a service call pays for itself: it costs {pays['offer_cost_eur']:.2f} EUR")
    also = dict(zip(book["customer_id"], batch["why_also_json"], strict=True))
    assert "act now" in also["pays"] and "act now" not in also["pays too"]
    free = dict(zip(book["customer_id"], batch["free_actions_json"], strict=True))
    assert "send the renewal terms" in free["cheap"] and "explain the current tariff" in free["cheap"]
    assert "log the complaint" in free["pays"] and "note the call" in free["silent"]
    assert set(summary["decided_by"]) == set(RULES)

    # the same inputs through the API's array path (which has no budget): the same action and words
    context = {
        c: book[c].to_numpy(dtype=float) for c in ("months_to_renewal", "complaints_180d", "pricing_contacts_180d")
    }
    details, decisions = recommend_best_arrays(
        book["churn_probability"].to_numpy(), book["risk_tier"].to_numpy(),
        book["expected_monthly_margin_eur"].to_numpy(), book["segment_archetype"].to_numpy(),
        book["reason_count"].to_numpy(), {"is_churned": book["is_churned"].to_numpy()}, context, policy,
    )  # fmt: skip
    assert list(details["action"]) == list(batch["action"])
    assert [d.rendered("en")["why"] for d in decisions] == list(batch["why"])
    assert [d.rule for d in decisions] == list(batch["decision_rule"])
    notes = decisions[4].rendered("en")["agent_notes"]
    assert notes[0] == "margin: 120.00 EUR a month (internal: do not share)"
    assert decisions[4].rendered("es")["why"].startswith("una llamada de servicio compensa")


def test_a_budget_that_binds_says_so_and_a_capped_cost_is_noted() -> None:
    from spanishgas.retention.offers import load_policy
    from spanishgas.retention.scoring import recommend

    book = _book()
    batch, _ = recommend(book, load_policy(), 1.0, "en")  # one euro: nothing fits
    outcome = dict(zip(book["customer_id"], batch["decision_rule"], strict=True))
    assert outcome["pays"] == outcome["pays too"] == "budget_exhausted"
    assert "the 1.00 EUR budget went to offers that keep more per euro" in batch["why"].iloc[4]
    # with a tight cap (5 % of the 12-month margin) every discount costs the cap, and the offer says so
    tight = dataclasses.replace(load_policy(), max_offer_share_of_margin=0.05)
    planned, _ = recommend(book, tight, None, "en")
    row = planned.set_index("customer_id").loc["pays"]
    assert row["action"] != "no_offer" and row["offer_cost_eur"] == pytest.approx(0.05 * 12 * 120.0)
    assert "its cost is capped at 5% of the customer's margin over 12 months" in row["why_also_json"]
    untouched = recommend(book, load_policy(), None, "en")[0].set_index("customer_id").loc["pays"]
    assert "capped" not in untouched["why_also_json"]
