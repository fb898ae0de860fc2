"""Drift and data quality: feature drift over time, prediction drift, matured-cohort performance, the
retraining decision, and the quarantine share of every pipeline run."""

from __future__ import annotations

import streamlit as st

import common
from spanishgas.analyst.health import decision_words, drift_over_time, flagged_features, retrain_verdict

common.page_start("Drift and data quality")

keys = common.current_keys()
history = common.monitoring(str(common.settings().lake_uri), keys.monitoring_run)
if history is None:
    st.info("No monitoring run yet: run `spanishgas monitor` (or the spanishgas_monitoring DAG) after scoring.")
    st.stop()

decision = history.decision
st.subheader(f"Decision ({decision['snapshot_date']}): {retrain_verdict(decision)}")
for sentence in decision_words(decision) or ["no rule asks for a retrain"]:
    st.markdown(f"- {sentence}")

st.subheader("Feature drift over time (PSI, whole book)")
wide = drift_over_time(history)
flagged = flagged_features(history, keys.monitoring_run)
shown = st.multiselect(
    "Features",
    list(wide.columns),
    default=list(dict.fromkeys(flagged["feature"]))[:6] or list(wide.columns)[:6],
    key="features",
)
if shown:
    st.line_chart(wide[shown], y_label="PSI")
st.dataframe(flagged, hide_index=True)

st.subheader("Prediction drift")
st.dataframe(history.prediction_drift[["snapshot_date", "psi", "expected_rate_change", "level"]], hide_index=True)

st.subheader("Matured cohorts (labels in): performance against the test period")
if history.performance.empty:
    st.write("No scoring run's 90 days have passed yet.")
else:
    st.line_chart(history.performance, x="snapshot_date", y=["pr_auc", "reference_pr_auc"])
    st.dataframe(history.performance, hide_index=True)

st.subheader("Data quality: quarantine share per pipeline run")
quality = history.data_quality
st.bar_chart(quality, x="run_id", y="quarantine_share", color="layer", x_label="")
st.dataframe(quality, hide_index=True)
st.caption(f"{history.runs} monitoring runs")
