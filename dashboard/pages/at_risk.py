"""At-risk customers: the call-center campaign's list, filtered and sorted, each row's top reasons in
words, downloadable as CSV."""

from __future__ import annotations

import streamlit as st

import common
from spanishgas.analyst.views import (
    AT_RISK_TIERS,
    SORTS,
    ListFilters,
    at_risk_list,
    campaign_csv,
    campaign_rows,
    filter_choices,
)

common.page_start("At-risk customers")

book = common.require_book()
choices = filter_choices(book)
left, middle, right = st.columns(3)
tiers = left.multiselect(
    "Risk tier", choices["tiers"], default=[t for t in AT_RISK_TIERS if t in choices["tiers"]], key="tiers"
)
segments = middle.multiselect("Segment", choices["segments"], key="segments")
provinces = right.multiselect("Province (INE code)", choices["provinces"], key="provinces")
left, middle, right = st.columns(3)
windows = left.multiselect("Renewal window", choices["renewal_windows"], key="windows")
channels = middle.multiselect("Sales channel", choices["channels"], key="channels")
sort_by = right.radio("Sort by", list(SORTS), horizontal=True, key="sort_by")

rows = at_risk_list(
    book,
    ListFilters(tuple(tiers), tuple(segments), tuple(provinces), tuple(windows), tuple(channels), sort_by),
)
st.write(f"**{len(rows):,}** of {len(book.customers):,} customers")
st.dataframe(
    rows,
    hide_index=True,
    column_config={
        "churn_probability": st.column_config.ProgressColumn(
            "churn probability", min_value=0.0, max_value=1.0, format="percent"
        ),
        "expected_monthly_margin_eur": st.column_config.NumberColumn("monthly margin (EUR)", format="%.2f"),
        "expected_monthly_loss_eur": st.column_config.NumberColumn("margin at risk (EUR/month)", format="%.2f"),
        "in_holdout": st.column_config.CheckboxColumn("held out", help="kept aside, not contacted: measures uplift"),
        "top_reasons": st.column_config.TextColumn("top reasons", width="large"),
    },
)
held_out = len(rows) - len(campaign_rows(rows))
if held_out:
    st.caption(f"{held_out:,} held-out customers (kept aside to measure the offers' uplift) are left out of the CSV.")
st.download_button(
    "Download the list (CSV)",
    campaign_csv(rows),
    file_name=f"at-risk-{book.as_of}.csv",
    mime="text/csv",
    icon=":material/download:",
)
