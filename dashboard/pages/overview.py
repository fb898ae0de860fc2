"""Overview: who is at risk this morning, what it may cost, what the plan keeps, and whether the model's
expected churn rate still follows the observed one."""

from __future__ import annotations

import streamlit as st

import common
from spanishgas.analyst.charts import churn_rate_chart, tier_chart
from spanishgas.analyst.views import overview

common.page_start("Overview")

book = common.require_book()
figures = overview(book)
cols = st.columns(4)
cols[0].metric("Active customers", f"{figures['active_customers']:,}")
cols[1].metric("At-risk customers", f"{figures['at_risk_customers']:,}", help="critical, high and medium tiers")
cols[2].metric("Expected churners (90 days)", f"{figures['expected_churners']:,.0f}")
cols[3].metric("Monthly margin at risk", common.euros(figures["monthly_margin_at_risk_eur"]))
cols = st.columns(4)
cols[0].metric("Customers offered", f"{figures['customers_offered']:,}")
cols[1].metric("Plan cost", common.euros(figures["plan_cost_eur"]))
cols[2].metric("Expected retained margin", common.euros(figures["plan_expected_retained_margin_eur"]))
budget = figures["budget_eur"]
cols[3].metric(
    "Budget", "none" if budget is None else common.euros(budget), help="none: every offer that pays for itself"
)

st.subheader("Customers by risk tier")
st.vega_lite_chart(*tier_chart(figures["by_tier"]), width="stretch")

st.subheader("Churn rate by month: observed and what the model expects")
history = common.churn_history(str(common.settings().lake_uri), book.run_id, book.gold_run, book.model_version)
st.vega_lite_chart(*churn_rate_chart(history), width="stretch")
st.caption(
    f"Each as-of month's customers whose 90 days have passed ({len(history)} months): observed churners beside "
    f"the mean probability model v{book.model_version} gives them."
)
