"""Benchmark: what the overview's two charts cost the app's Python process per run, drawn with Streamlit's
chart helpers (`st.bar_chart`, `st.line_chart`: an Altair chart built and validated) against the plain
Vega-Lite specs of `spanishgas.analyst.charts` (`st.vega_lite_chart`).

    export SPANISHGAS_PROFILE=stack ...   # a scored world, as for bench_dashboard.py
    .venv/bin/python benchmarks/bench_overview_charts.py

Streamlit in bare mode (no app running: the elements are built, then dropped), on the newest published
book and churn history; each way 20 times after one first call. Prints one JSON line (milliseconds).
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable


def _timed(draw: Callable[[], None], repeat: int = 20) -> dict[str, float]:
    started = time.perf_counter()
    draw()
    first = time.perf_counter() - started
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        draw()
        seconds.append(time.perf_counter() - started)
    return {"first_ms": round(first * 1000, 1), "median_ms": round(statistics.median(seconds) * 1000, 2)}


def main() -> None:
    """Time both ways on the newest published book, print the figures."""
    logging.disable(logging.WARNING)  # bare mode warns on every element
    import pandas as pd
    import streamlit as st

    from spanishgas.analyst.book import load_book, published_history, run_keys
    from spanishgas.analyst.charts import EXPECTED, OBSERVED, churn_rate_chart, tier_chart
    from spanishgas.analyst.views import overview
    from spanishgas.settings import get_settings

    settings = get_settings()
    keys = run_keys(settings)
    by_tier = overview(load_book(settings, keys.scores_run))["by_tier"]
    history = published_history(settings, keys.scores_run)
    assert history is not None, "the scoring run published no churn history"

    def helpers() -> None:
        tiers = pd.DataFrame({"tier": list(by_tier), "customers": list(by_tier.values())})
        st.bar_chart(tiers, x="tier", y="customers", horizontal=True, sort=False, x_label="customers", y_label="")
        wide = history.rename(columns={"observed_rate": OBSERVED, "expected_rate": EXPECTED})
        st.line_chart(wide, x="month", y=[OBSERVED, EXPECTED], y_label="90-day churn rate")

    def specs() -> None:
        st.vega_lite_chart(*tier_chart(by_tier), width="stretch")
        st.vega_lite_chart(*churn_rate_chart(history), width="stretch")

    print(json.dumps({"months": len(history), "chart_helpers": _timed(helpers), "vega_lite_specs": _timed(specs)}))


if __name__ == "__main__":
    main()
