"""The SpanishGas retention app for analysts: `spanishgas dashboard` starts it (Streamlit). Every page is a
thin shell over `spanishgas.analyst`; `common` holds the cached reads, the sign-in gate and the header."""

from __future__ import annotations

import streamlit as st

import common

st.set_page_config(page_title="SpanishGas retention", page_icon=":material/bolt:", layout="wide")
common.access_gate()
pages = st.navigation(
    {
        "The book": [
            st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
            st.Page("pages/at_risk.py", title="At-risk customers", icon=":material/warning:", url_path="at-risk"),
            st.Page("pages/customer.py", title="Customer", icon=":material/person:", url_path="customer"),
            st.Page("pages/plan.py", title="Retention plan", icon=":material/savings:", url_path="plan"),
            st.Page("pages/segments.py", title="Segments", icon=":material/groups:", url_path="segments"),
        ],
        "The model": [
            st.Page("pages/model.py", title="Model", icon=":material/model_training:", url_path="model"),
            st.Page("pages/drift.py", title="Drift and data quality", icon=":material/monitoring:", url_path="drift"),
        ],
    }
)
pages.run()
