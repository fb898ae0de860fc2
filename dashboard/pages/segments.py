"""Segments: each segment's profile in the business's words, and how it differs from the whole book."""

from __future__ import annotations

import streamlit as st

import common
from spanishgas.analyst.views import segment_differences, segment_profiles

common.page_start("Segments")

book = common.require_book()
observed = common.matured_labels(str(common.settings().lake_uri), book.gold_run)
profiles = segment_profiles(book, observed)
st.dataframe(
    profiles,
    column_config={
        "share of book": st.column_config.NumberColumn(format="percent"),
        "expected churn rate (90 days)": st.column_config.NumberColumn(format="percent"),
        "observed churn rate (latest matured month)": st.column_config.NumberColumn(format="percent"),
        "dual-fuel share": st.column_config.NumberColumn(format="percent"),
        "renewing within 3 months": st.column_config.NumberColumn(format="percent"),
    },
)
st.subheader("How the segments differ")
for segment, words in segment_differences(profiles, book).items():
    st.markdown(f"**{segment}** ({int(profiles.loc[segment, 'customers']):,} customers): " + "; ".join(words))
