"""Customer: one customer through the scoring API (or the same service in process): probability, tier,
reasons with their contributions, the recommended action and its value, the consumption and price
history, and a what-if answered by `POST /score`."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import common
from spanishgas.analyst.lookup import LookupFailed, what_if_features

common.page_start("Customer")

book = common.require_book()
keys = common.current_keys()
s = common.settings()
ranked = book.customers.sort_values("churn_probability", ascending=False)["customer_id"].tolist()
customer_id = st.text_input("Customer id", value=ranked[0] if ranked else "", key="customer_id").strip()
lookup = common.lookup(s.dashboard.api_url, keys.champion_version)
try:
    answer = lookup.score(customer_id)
except LookupFailed as exc:
    st.warning(f"Cannot score {customer_id!r}: {exc}")
    st.stop()
if answer.note:
    st.warning(answer.note)
body = answer.body
st.caption(f"answered {answer.source}, model v{body['model']['version']}")

cols = st.columns(4)
cols[0].metric("Churn probability (90 days)", f"{body['churn_probability']:.1%}")
cols[1].metric("Risk tier", body["risk_tier"])
recommendation = body["recommendation"]
cols[2].metric(
    "Recommended action", recommendation["action"].replace("_", " "), help=f"timing: {recommendation['timing']}"
)
cols[3].metric("Expected value of the action", common.euros(recommendation["expected_margin_impact_eur"]))
st.caption(
    f"segment: {body['segment']['name']} · offer cost {recommendation['offer_cost_eur']:.2f} EUR · "
    f"margin at risk {recommendation['expected_monthly_loss_eur']:.2f} EUR a month"
)

st.markdown(f"**Why this action:** {'; '.join([recommendation['why'], *recommendation.get('also', [])])}")
st.markdown("**At no cost, the agent can:** " + "; ".join(recommendation.get("free_actions", [])))

st.subheader("Why the risk")
reasons = pd.DataFrame(body["reasons"])
if reasons.empty:
    st.write("No feature pushes this customer's risk up.")
else:
    for phrase in reasons["phrase"]:
        st.markdown(f"- {phrase}")
    st.bar_chart(
        reasons, x="phrase", y="contribution", horizontal=True, y_label="", x_label="push on the risk (log-odds)"
    )

st.subheader("Consumption and price")
history = common.customer_history(str(s.lake_uri), book.gold_run, customer_id)
if history.empty:
    st.write("No monthly history in the current gold run.")
else:
    left, right = st.columns(2)
    left.line_chart(history, x="month", y=["electricity kWh", "gas kWh"])
    right.line_chart(history, x="month", y="price EUR/kWh")

st.subheader("What if")
left, middle, right = st.columns(3)
price_change = left.slider("Price change (%)", -20, 30, 0, step=1, key="price_change")
renewal = middle.checkbox("Renewal signed today", key="renewal_signed")
complaint = right.checkbox("Open complaints resolved", key="complaint_resolved")
if price_change or renewal or complaint:
    current = common.customer_features(str(s.lake_uri), book.gold_run, customer_id)
    changes = what_if_features(current, float(price_change), renewal, complaint)
    try:
        changed = lookup.what_if(customer_id, changes).body
    except LookupFailed as exc:
        st.warning(f"The what-if could not be scored: {exc}")
    else:
        delta = changed["churn_probability"] - body["churn_probability"]
        cols = st.columns(3)
        cols[0].metric(
            "Churn probability", f"{changed['churn_probability']:.1%}", f"{delta:+.1%}", delta_color="inverse"
        )
        cols[1].metric("Risk tier", changed["risk_tier"])
        cols[2].metric("Recommended action", changed["recommendation"]["action"].replace("_", " "))
        st.dataframe(pd.DataFrame(changed["reasons"]), hide_index=True)
