"""The analyst app's figures on hand-made books: overview sums, renewal windows and channels, the at-risk
filters and sort, segment profiles, test-row curves against scikit-learn, and the what-if's feature changes."""

from __future__ import annotations

import io
import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from spanishgas.analyst.book import Book, channel_names, reason_phrases, renewal_windows
from spanishgas.analyst.charts import EXPECTED, OBSERVED, churn_rate_chart, tier_chart
from spanishgas.analyst.health import curves, top_decile_recall
from spanishgas.analyst.lookup import RENEWED, what_if_features
from spanishgas.analyst.views import (
    ListFilters,
    at_risk_list,
    campaign_csv,
    filter_choices,
    overview,
    segment_differences,
    segment_profiles,
)

pytestmark = pytest.mark.unit


def _book() -> Book:
    reasons = json.dumps([{"phrase": "contract renews in 3 weeks", "feature": "months_to_renewal", "value": 0.7,
                           "contribution": 0.9}, {"phrase": "two complaints this quarter", "feature": "complaints_90d",
                           "value": 2, "contribution": 0.4}])  # fmt: skip
    customers = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3", "C4"],
            "churn_probability": [0.40, 0.15, 0.07, 0.01],
            "risk_tier": ["critical", "high", "medium", "low"],
            "segment_name": ["price hunters", "price hunters", "loyal families", "loyal families"],
            "customer_segment": ["residential"] * 4,
            "province_code": [28, 8, 28, 41],
            "months_to_renewal": [0.7, 4.0, -1.0, 20.0],
            "expected_monthly_margin_eur": [10.0, 30.0, 20.0, 40.0],
            "expected_monthly_loss_eur": [4.0, 4.5, 1.4, 0.4],
            "elec_kwh_avg_12m": [100.0, 300.0, 200.0, 400.0],
            "action": ["medium_discount", "no_offer", "no_offer", "no_offer"],
            "timing_window": ["immediate", "none", "none", "none"],
            "is_channel_comparison": [1.0, 0.0, 0.0, 0.0],
            "is_channel_own_web": [0.0, 1.0, 0.0, 0.0],
            "reasons_json": [reasons, "", "[]", reasons],
        }
    )
    customers["renewal_window"] = renewal_windows(customers["months_to_renewal"])
    customers["sales_channel"] = channel_names(customers)
    customers["top_reasons"] = [reason_phrases(r) for r in customers["reasons_json"]]
    summary = {
        "plan": {"customers_offered": 1, "cost_eur": 12.0, "expected_retained_margin_eur": 30.0},
        "budget_eur": 100,
    }
    return Book("scores-1", "3", "gold-1", date(2025, 1, 1), summary, customers)


def test_renewal_windows_and_channels_read_the_way_campaigns_are_planned() -> None:
    months = pd.Series([-2.0, 0.0, 0.5, 3.0, 5.9, 6.0, 11.9, 12.0, np.nan])
    assert renewal_windows(months).tolist() == [
        "expired", "expired", "0-3 months", "3-6 months", "3-6 months", "6-12 months", "6-12 months",
        "12+ months", "unknown",
    ]  # fmt: skip
    assert _book().customers["sales_channel"].tolist() == ["comparison site", "own website", "unknown", "unknown"]


def test_the_overview_sums_the_book_and_reads_the_plan() -> None:
    figures = overview(_book())
    assert figures["active_customers"] == 4 and figures["at_risk_customers"] == 3
    assert figures["by_tier"] == {"critical": 1, "high": 1, "medium": 1, "low": 1}
    assert figures["expected_churners"] == pytest.approx(0.63)
    assert figures["monthly_margin_at_risk_eur"] == pytest.approx(10.3)
    assert (figures["customers_offered"], figures["plan_cost_eur"], figures["budget_eur"]) == (1, 12.0, 100)


def test_filters_narrow_and_the_sort_holds() -> None:
    book = _book()
    assert at_risk_list(book, ListFilters())["customer_id"].tolist() == ["C1", "C2", "C3"]  # at-risk tiers
    by_margin = at_risk_list(book, ListFilters(sort_by="margin at risk"))
    assert by_margin["customer_id"].tolist() == ["C2", "C1", "C3"]
    madrid = at_risk_list(book, ListFilters(tiers=(), provinces=(28,)))
    assert madrid["customer_id"].tolist() == ["C1", "C3"]
    urgent = at_risk_list(book, ListFilters(renewal_windows=("expired", "0-3 months"), channels=("comparison site",)))
    assert urgent["customer_id"].tolist() == ["C1"]
    assert urgent["top_reasons"].iloc[0] == "contract renews in 3 weeks; two complaints this quarter"
    csv = campaign_csv(urgent).decode()
    assert csv.splitlines()[0].startswith("customer_id,churn_probability") and "C1" in csv
    choices = filter_choices(book)
    assert choices["renewal_windows"] == ["expired", "0-3 months", "3-6 months", "12+ months"]
    assert choices["provinces"] == [8, 28, 41]


def test_segment_profiles_and_how_they_differ() -> None:
    book = _book()
    observed = pd.DataFrame({"customer_id": ["C1", "C2", "C3", "C4"], "label": [1, 0, 0, 0]})
    profiles = segment_profiles(book, observed)
    hunters = profiles.loc["price hunters"]
    assert hunters["customers"] == 2 and hunters["share of book"] == 0.5
    assert hunters["expected churn rate (90 days)"] == pytest.approx(0.275)
    assert hunters["observed churn rate (latest matured month)"] == 0.5
    assert hunters["monthly margin (EUR)"] == 20.0 and hunters["renewing within 3 months"] == 0.5
    words = segment_differences(profiles, book)
    # the hunters' churn is 0.275 / 0.1575 of the book's: the first difference named
    assert words["price hunters"][0] == "expected churn rate (90 days): 1.7x the book's"


def test_the_views_leave_the_shared_book_as_it_was() -> None:
    """The app keeps one book for every session (st.cache_resource): a view that changed it in place would
    change what every other analyst sees."""
    from types import SimpleNamespace

    from spanishgas.analyst.views import plan_inputs

    book = _book()
    book.customers["segment_id"] = [0, 0, 1, 1]
    before = book.customers.copy(deep=True)
    overview(book)
    filter_choices(book)
    for sort_by in ("churn probability", "margin at risk"):
        at_risk_list(book, ListFilters(tiers=(), sort_by=sort_by))
    segment_differences(segment_profiles(book, pd.DataFrame({"customer_id": ["C1"], "label": [1]})), book)
    plan_inputs(book, SimpleNamespace(threshold=0.1), SimpleNamespace(archetypes={"0": "price", "1": "loyal"}))  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(book.customers, before)


def test_curves_match_scikit_learn() -> None:
    from sklearn.metrics import auc, roc_auc_score

    rng = np.random.default_rng(7)
    labels = rng.binomial(1, 0.2, 500)
    p = np.clip(labels * 0.3 + rng.uniform(0, 0.7, 500), 0, 1)
    out = curves(labels, {"champion": p})
    roc = out.roc
    assert auc(roc["false positive rate"], roc["true positive rate"]) == pytest.approx(roc_auc_score(labels, p))
    deciles = out.deciles
    assert len(deciles) == 10 and deciles["cumulative gain"].iloc[-1] == pytest.approx(1.0)
    top = np.argsort(-p, kind="stable")[:50]
    assert deciles["lift"].iloc[0] == pytest.approx(labels[top].mean() / labels.mean())
    assert out.calibration["predicted"].iloc[0] == pytest.approx(p[top].mean())
    assert (out.rows, out.churners) == (500, int(labels.sum()))
    # top-decile recall: the churners among the 50 highest scores over all churners
    assert top_decile_recall(deciles) == {"champion": pytest.approx(labels[top].sum() / labels.sum())}


def test_what_if_questions_become_feature_changes() -> None:
    current = {"price_tier1_last": 0.20, "price_vs_cost_last": 0.5, "price_trend_3m": 0.01, "complaints_90d": 2.0}
    assert what_if_features(current) == {}
    rise = what_if_features(current, price_change_pct=10)
    assert rise["price_tier1_last"] == pytest.approx(0.22) and rise["price_vs_cost_last"] == pytest.approx(0.55)
    assert rise["price_trend_3m"] == pytest.approx(0.11) and rise["price_increase_3m"] == 1.0
    signed = what_if_features(current, renewal_signed=True, complaint_resolved=True)
    assert signed["months_to_renewal"] == 12.0 and set(RENEWED) < set(signed)
    assert signed["complaints_90d"] == signed["complaints_365d"] == 0.0
    from spanishgas.serving.service import what_if_feature_names

    assert set(signed) | set(rise) <= set(what_if_feature_names())  # the API accepts every change


def _valid_vega_lite(rows: pd.DataFrame, spec: dict) -> None:
    """The spec with its rows inlined passes the Vega-Lite schema Altair ships (raises if it does not), and
    every field it encodes is a column of the rows."""
    import altair as alt

    alt.Chart.from_dict({**spec, "data": {"values": json.loads(rows.to_json(orient="records", date_format="iso"))}})
    encoded = [e["field"] for e in spec["encoding"].values() if isinstance(e, dict)]
    encoded += [t["field"] for t in spec["encoding"].get("tooltip", [])]
    assert set(encoded) <= set(rows.columns)


def test_the_overview_charts_are_valid_vega_lite_of_the_books_figures() -> None:
    rows, spec = tier_chart(overview(_book())["by_tier"] | {"low": 0})
    _valid_vega_lite(rows, spec)
    assert rows["tier"].tolist() == ["critical", "high", "medium", "low"]  # the tiers' order, a zero shown
    assert rows["customers"].tolist() == [1, 1, 1, 0]
    assert spec["encoding"]["y"]["sort"] == ["critical", "high", "medium", "low"]

    history = pd.DataFrame(
        {"month": pd.to_datetime(["2024-04-01", "2024-05-01"]), "customers": [10, 12],
         "observed_rate": [0.1, 0.25], "expected_rate": [0.12, 0.2]}
    )  # fmt: skip
    rows, spec = churn_rate_chart(history)
    _valid_vega_lite(rows, spec)
    observed = rows[rows["series"] == OBSERVED].set_index("month")["rate"]
    expected = rows[rows["series"] == EXPECTED].set_index("month")["rate"]
    assert observed.tolist() == [0.1, 0.25] and expected.tolist() == [0.12, 0.2]
    assert observed.index.tolist() == history["month"].tolist()


def test_held_out_customers_are_shown_but_never_in_a_download() -> None:
    from spanishgas.analyst.views import HOLDOUT, campaign_rows

    book = _book()
    book.customers[HOLDOUT] = [True, False, False, False]  # C1 has an offer and is kept aside
    rows = at_risk_list(book, ListFilters())
    assert rows.set_index("customer_id").loc["C1", HOLDOUT]  # the analyst sees who is held out
    to_call = [c for c in rows["customer_id"] if c != "C1"]
    assert len(to_call) == len(rows) - 1 and campaign_rows(rows)["customer_id"].tolist() == to_call
    sent = pd.read_csv(io.BytesIO(campaign_csv(rows)))
    assert sent["customer_id"].tolist() == to_call and HOLDOUT not in sent


def test_a_live_plan_keeps_the_runs_holdout_and_draws_new_offers_the_same_way() -> None:
    from spanishgas.analyst.views import HOLDOUT, plan_holdout
    from spanishgas.retention.scoring import holdout_mask

    ids = [f"C{i:03d}" for i in range(400)]
    published = pd.DataFrame({"customer_id": ids, "action": ["small_discount"] * 200 + ["no_offer"] * 200})
    published[HOLDOUT] = holdout_mask(published["customer_id"], published["action"], 0.1, "scores-1")
    # the live plan drops the first 50 offers and makes 100 new ones, its rows in another order
    actions = ["no_offer"] * 50 + ["small_discount"] * 250 + ["no_offer"] * 100
    live = pd.DataFrame({"customer_id": ids, "action": actions}).iloc[::-1].reset_index(drop=True)
    held = pd.Series(plan_holdout(live, published, 0.1, "scores-1"), index=live["customer_id"]).loc[ids]
    kept = published.set_index("customer_id")[HOLDOUT]
    assert not held.iloc[:50].any()  # no offer, nobody kept aside
    assert held.iloc[50:200].equals(kept.iloc[50:200]) and kept.iloc[50:200].any()  # the run's holdout stays
    drawn = pd.Series(holdout_mask(live["customer_id"], live["action"], 0.1, "scores-1"), index=live["customer_id"])
    assert held.iloc[200:300].equals(drawn.loc[ids[200:300]]) and 0 < held.iloc[200:300].sum() < 40
    assert not held.iloc[300:].any()
    assert (plan_holdout(live, published, 0.1, "scores-1") == held.loc[live["customer_id"]].to_numpy()).all()
    assert not plan_holdout(live, published.drop(columns=[HOLDOUT]), 0.0, "scores-1").any()


def test_the_open_app_is_served_on_loopback_only() -> None:
    from spanishgas.analyst.app import OpenAppOffLoopback, dashboard_command, sign_in_required
    from spanishgas.settings import DashboardSettings, Settings

    local = Settings(profile="local")
    assert not sign_in_required(local) and sign_in_required(Settings(profile="stack"))
    assert dashboard_command(local)[dashboard_command(local).index("--server.address") + 1] == "127.0.0.1"
    with pytest.raises(OpenAppOffLoopback, match=r"loopback only, not 0\.0\.0\.0"):
        dashboard_command(local, host="0.0.0.0")
    signed = local.model_copy(update={"dashboard": DashboardSettings(require_sign_in=True)})
    assert "0.0.0.0" in dashboard_command(signed, host="0.0.0.0")
    assert "0.0.0.0" in dashboard_command(Settings(profile="stack"), host="0.0.0.0")  # docker-compose's
