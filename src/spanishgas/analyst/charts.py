"""The overview's charts as plain Vega-Lite specs.

The overview is the page every analyst opens first and reopens most. `st.line_chart` and `st.bar_chart`
build and validate an Altair chart on every run (about 50 ms of the app's one Python process a run:
benchmarks/bench_overview_charts.py), while a new browser session is fetching Streamlit's front-end files
from that same process; a spec is a dict. The specs also name the as-of months on the axis (the helpers
labelled fortnights between monthly points). Each function returns the rows and the spec for
`st.vega_lite_chart`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from spanishgas.analyst.book import TIER_ORDER

OBSERVED = "observed"
EXPECTED = "expected by the model"


def tier_chart(by_tier: Mapping[str, int]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Customers per risk tier as horizontal bars, the tiers in their order (critical first)."""
    rows = pd.DataFrame({"tier": list(TIER_ORDER), "customers": [int(by_tier.get(t, 0)) for t in TIER_ORDER]})
    spec = {
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "tier", "type": "nominal", "sort": list(TIER_ORDER), "title": None},
            "x": {"field": "customers", "type": "quantitative", "title": "customers"},
        },
    }
    return rows, spec


def churn_rate_chart(history: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Observed and expected 90-day churn rate per as-of month (``month``, ``observed_rate``,
    ``expected_rate``), one line each, a point per month, the month named on the axis."""
    rows = history.rename(columns={"observed_rate": OBSERVED, "expected_rate": EXPECTED}).melt(
        id_vars=["month"], value_vars=[OBSERVED, EXPECTED], var_name="series", value_name="rate"
    )
    spec = {
        "mark": {"type": "line", "point": True, "tooltip": True},
        "encoding": {
            "x": {
                "field": "month",
                "type": "ordinal",
                "timeUnit": "yearmonth",
                "title": None,
                "axis": {"format": "%b %Y", "labelAngle": 0},
            },
            "y": {"field": "rate", "type": "quantitative", "title": "90-day churn rate", "axis": {"format": ".1%"}},
            "color": {"field": "series", "type": "nominal", "title": None, "sort": [OBSERVED, EXPECTED]},
            "tooltip": [
                {"field": "month", "type": "temporal", "timeUnit": "yearmonth", "title": "as-of month"},
                {"field": "series", "type": "nominal"},
                {"field": "rate", "type": "quantitative", "format": ".2%"},
            ],
        },
    }
    return rows, spec
