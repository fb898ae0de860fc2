"""A small builder for Grafana dashboard JSON: panels, rows, template variables and the 24-column grid.

Dashboards are kept as Python (``spanishgas.observability.dashboards``) and written as the JSON Grafana
provisions (``monitoring/grafana/dashboards/``); ADR 0014 says why this instead of a dashboard SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The provisioned data sources (monitoring/grafana/provisioning/datasources/): every panel names one.
PROMETHEUS = {"type": "prometheus", "uid": "spanishgas-prometheus"}
MONITORING_DB = {"type": "grafana-postgresql-datasource", "uid": "spanishgas-monitoring-db"}
GRID_COLUMNS = 24
SCHEMA_VERSION = 39  # Grafana 11


@dataclass(frozen=True)
class Query:
    """One PromQL expression (``expr``) or one SQL statement (``sql``) of a panel."""

    expr: str = ""
    legend: str = ""
    instant: bool = False
    sql: str = ""
    table: bool = False  # SQL: a table instead of time series

    def target(self, ref_id: str) -> dict[str, Any]:
        """The panel target Grafana stores."""
        if self.sql:
            return {
                "refId": ref_id,
                "datasource": MONITORING_DB,
                "editorMode": "code",
                "format": "table" if self.table else "time_series",
                "rawQuery": True,
                "rawSql": self.sql,
            }
        return {
            "refId": ref_id,
            "datasource": PROMETHEUS,
            "editorMode": "code",
            "expr": self.expr,
            "legendFormat": self.legend or "__auto",
            "instant": self.instant,
            "range": not self.instant,
        }


@dataclass(frozen=True)
class Panel:
    """A panel: what it shows (``kind``: timeseries, stat, table, bargauge), its queries and its size."""

    title: str
    description: str
    queries: tuple[Query, ...]
    kind: str = "timeseries"
    unit: str = "short"
    width: int = 12
    height: int = 8
    stacked: bool = False
    thresholds: tuple[tuple[float, str], ...] = ()
    mappings: tuple[tuple[str, str, str], ...] = ()  # value, text, color

    def to_json(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        """The panel's JSON at grid position (x, y)."""
        datasource = MONITORING_DB if all(q.sql for q in self.queries) else PROMETHEUS
        steps = [{"color": "green", "value": None}] + [{"color": c, "value": v} for v, c in self.thresholds]
        defaults: dict[str, Any] = {"unit": self.unit, "thresholds": {"mode": "absolute", "steps": steps}}
        if self.mappings:
            defaults["mappings"] = [
                {"type": "value", "options": {value: {"text": text, "color": color, "index": i}}}
                for i, (value, text, color) in enumerate(self.mappings)
            ]
        if self.kind == "timeseries":
            defaults["custom"] = {"stacking": {"mode": "normal" if self.stacked else "none"}, "fillOpacity": 10}
        return {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "datasource": datasource,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "targets": [q.target(chr(ord("A") + i)) for i, q in enumerate(self.queries)],
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": _options(self.kind),
        }


def _options(kind: str) -> dict[str, Any]:
    if kind == "stat":
        return {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "value"}
    if kind == "bargauge":
        return {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "orientation": "horizontal"}
    if kind == "table":
        return {"showHeader": True, "cellHeight": "sm"}
    legend = {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull"]}
    return {"legend": legend, "tooltip": {"mode": "multi"}}


@dataclass(frozen=True)
class Variable:
    """A template variable filled from a Prometheus label (``label_values(metric, label)``)."""

    name: str
    label: str
    metric: str
    multi: bool = True

    def to_json(self) -> dict[str, Any]:
        """The variable's JSON (all values selected by default)."""
        definition = f"label_values({self.metric}, {self.label})"
        return {
            "name": self.name,
            "label": self.name.replace("_", " "),
            "type": "query",
            "datasource": PROMETHEUS,
            "definition": definition,
            "query": {"qryType": 1, "query": definition, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "refresh": 2,  # on time range change: a new model version appears without a reload
            "includeAll": True,
            "multi": self.multi,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 3,
        }


@dataclass
class Dashboard:
    """A dashboard: rows of panels laid left to right, wrapping at the grid's 24 columns."""

    uid: str
    title: str
    description: str
    tags: tuple[str, ...] = ()
    variables: tuple[Variable, ...] = ()
    rows: list[tuple[str, list[Panel]]] = field(default_factory=list)
    refresh: str = "30s"
    time_from: str = "now-6h"

    def to_json(self) -> dict[str, Any]:
        """The dashboard JSON Grafana provisions (``id`` null: Grafana assigns it; the uid is fixed)."""
        panels: list[dict[str, Any]] = []
        y = 0
        for title, row in self.rows:
            panels.append(_row(len(panels) + 1, title, y))
            y += 1
            x, line_height = 0, 0
            for panel in row:
                if x + panel.width > GRID_COLUMNS:
                    x, y, line_height = 0, y + line_height, 0
                panels.append(panel.to_json(len(panels) + 1, x, y))
                x += panel.width
                line_height = max(line_height, panel.height)
            y += line_height
        return {
            "id": None,
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": "browser",
            "editable": False,
            "graphTooltip": 1,
            "refresh": self.refresh,
            "schemaVersion": SCHEMA_VERSION,
            "time": {"from": self.time_from, "to": "now"},
            "templating": {"list": [v.to_json() for v in self.variables]},
            "annotations": {"list": []},
            "links": [],
            "panels": panels,
            "version": 1,
        }


def _row(panel_id: int, title: str, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"h": 1, "w": GRID_COLUMNS, "x": 0, "y": y},
        "panels": [],
    }
