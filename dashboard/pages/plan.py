"""Retention plan: a budget slider that reruns the optimizer live, the plan beside the rules-only policy
and "offer everyone above the threshold", value by segment and action, the holdout; download."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import common
from spanishgas.analyst.views import compare_plans, plan_csv, plan_inputs
from spanishgas.retention.offers import load_policy

common.page_start("Retention plan")

book = common.require_book()
s = common.settings()
frame = plan_inputs(
    book,
    common.model(str(s.mlflow_registry_uri), book.model_version),
    common.segment_model(str(s.mlflow_registry_uri), book.run_id),
)
no_budget = st.toggle("No budget: every offer that pays for itself", value=False, key="no_budget")
published = book.summary.get("budget_eur")
start = int(published) if published else 5_000
budget = None if no_budget else st.slider("Monthly budget (EUR)", 0, 100_000, start, step=500, key="budget")
comparison = compare_plans(frame, load_policy(), budget, book.holdout_share, book.run_id)
for note in comparison.notes:
    st.info(note)

plans = pd.DataFrame(comparison.plans).T[
    ["customers_offered", "cost_eur", "expected_retained_margin_eur", "expected_value_eur"]
]
st.dataframe(
    plans,
    column_config={
        "customers_offered": st.column_config.NumberColumn("customers offered"),
        "cost_eur": st.column_config.NumberColumn("cost (EUR)", format="%.0f"),
        "expected_retained_margin_eur": st.column_config.NumberColumn("expected retained margin (EUR)", format="%.0f"),
        "expected_value_eur": st.column_config.NumberColumn("net expected value (EUR)", format="%.0f"),
    },
)
this = comparison.plans["this plan"]
cols = st.columns(3)
cols[0].metric("Plan cost", common.euros(this["cost_eur"]))
cols[1].metric("Net expected value", common.euros(this["expected_value_eur"]))
cols[2].metric(
    "Held out (not contacted)",
    f"{comparison.holdout_customers:,}",
    help=f"{book.holdout_share:.0%} of the offered customers are kept aside at random to measure real uplift; "
    "the download leaves them out",
)

st.subheader("Value by segment and action")
if comparison.by_segment_action.empty:
    st.write("No offers in this plan.")
else:
    st.dataframe(
        comparison.by_segment_action,
        hide_index=True,
        column_config={
            "segment_name": "segment",
            "cost_eur": st.column_config.NumberColumn("cost (EUR)", format="%.2f"),
            "expected_value_eur": st.column_config.NumberColumn("net expected value (EUR)", format="%.2f"),
        },
    )
    st.bar_chart(
        comparison.by_segment_action,
        x="segment_name",
        y="expected_value_eur",
        color="action",
        horizontal=True,
        x_label="net expected value (EUR)",
        y_label="",
    )
st.download_button(
    "Download the plan (CSV)",
    plan_csv(comparison),
    file_name=f"retention-plan-{book.as_of}.csv",
    mime="text/csv",
    icon=":material/download:",
)
