"""Model: champion and challenger side by side (forward-test figures; PR, ROC, calibration, lift and gain
by decile on the same test rows), global SHAP importance, the model card, the promotion decisions."""

from __future__ import annotations

import streamlit as st

import common
from spanishgas.analyst.health import figures_side_by_side, top_decile_recall

common.page_start("Model")

keys = common.current_keys()
registry = str(common.settings().mlflow_registry_uri)
versions = common.compared_versions(keys)
if not versions:
    st.warning("No champion model yet: train one (`spanishgas train`) and promote it (`spanishgas promote`).")
    st.stop()
reports = {label: common.version_report(registry, v) for label, v in versions.items()}
if len(versions) == 1:
    st.info(f"The challenger is the champion (v{keys.champion_version}): nothing to compare yet.")
st.dataframe(figures_side_by_side(reports))

curves = common.test_curves(registry, keys.gold_run, tuple(versions.items()))
st.caption(curves.caption())
left, right = st.columns(2)
left.markdown("**Precision and recall**")
left.line_chart(curves.pr, x="recall", y="precision", color="model")
right.markdown("**ROC**")
right.line_chart(curves.roc, x="false positive rate", y="true positive rate", color="model")
left, right = st.columns(2)
left.markdown("**Calibration by decile** (predicted vs observed churn rate)")
left.scatter_chart(curves.calibration, x="predicted", y="observed", color="model")
right.markdown("**Lift by decile** (1 = random)")
right.bar_chart(curves.deciles, x="decile", y="lift", color="model", stack=False)
st.markdown("**Cumulative gain** (share of churners reached by contacting the top deciles)")
st.line_chart(curves.deciles, x="decile", y="cumulative gain", color="model")
top = top_decile_recall(curves.deciles)
st.caption("Top-decile recall: " + ", ".join(f"{m} {v:.0%}" for m, v in top.items()))

importance, card = common.version_extras(registry, keys.champion_version)
st.subheader(f"What drives the champion (global SHAP importance, v{keys.champion_version})")
st.bar_chart(
    importance.head(15), x="feature", y="share", horizontal=True, sort="-share", x_label="share of the mean |SHAP|"
)
with st.expander("Model card", expanded=False):
    st.markdown(card)
st.subheader("Promotion decisions")
st.dataframe(common.decisions(registry, keys.champion_version), hide_index=True)
