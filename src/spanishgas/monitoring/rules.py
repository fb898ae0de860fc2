"""Warn / alert thresholds: defaults from the settings, per-feature overrides from a YAML file.

The YAML file (``SPANISHGAS_MONITORING__THRESHOLDS_FILE``) looks like::

    features:
      province_elec_cost_last: {psi: [0.2, 0.4]}   # warn, alert
      days_since_last_contact: {ks: [0.2, 0.4], missing: [0.1, 0.2]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from spanishgas.settings import MonitoringSettings

OK, WARN, ALERT = "ok", "warn", "alert"
LEVELS = (OK, WARN, ALERT)
# The statistics a rule can be set on, and the settings field prefix of each default.
STATISTICS = {"psi": "psi", "ks": "ks", "js": "js", "level": "level", "spread": "spread", "missing": "missing"}


def level_rank(level: str) -> int:
    """0 ok, 1 warn, 2 alert."""
    return LEVELS.index(level)


@dataclass(frozen=True)
class Thresholds:
    """Warn and alert bounds per statistic, with the per-feature overrides."""

    defaults: dict[str, tuple[float, float]]
    overrides: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)

    def bounds(self, feature: str, statistic: str) -> tuple[float, float]:
        """(warn, alert) for one feature and statistic."""
        return self.overrides.get(feature, {}).get(statistic, self.defaults[statistic])

    def judge(self, feature: str, values: dict[str, float | None]) -> tuple[str, list[str]]:
        """The level a feature's statistics reach and the rules they broke (``psi>=0.25``)."""
        checks = [(k, v, self.bounds(feature, k)) for k, v in values.items() if k in self.defaults]
        return judge_checks(checks)


def judge_checks(checks: list[tuple[str, float | None, tuple[float, float]]]) -> tuple[str, list[str]]:
    """The highest level that (statistic, value, (warn, alert)) checks reach, and the rules broken; a
    missing value breaks nothing."""
    level, broken = OK, []
    for statistic, value, (warn, alert) in checks:
        if value is None:
            continue
        if value >= alert:
            level = ALERT
            broken.append(f"{statistic}>={alert:g}")
        elif value >= warn:
            level = level if level == ALERT else WARN
            broken.append(f"{statistic}>={warn:g}")
    return level, broken


def load_thresholds(settings: MonitoringSettings) -> Thresholds:
    """The defaults of ``settings`` and the overrides of its YAML file (a clear error when malformed)."""
    defaults = {
        name: (float(getattr(settings, f"{prefix}_warn")), float(getattr(settings, f"{prefix}_alert")))
        for name, prefix in STATISTICS.items()
    }
    overrides: dict[str, dict[str, tuple[float, float]]] = {}
    path = settings.thresholds_file
    if path is not None:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        for feature, rules in (raw.get("features") or {}).items():
            overrides[feature] = {}
            for statistic, bounds in rules.items():
                if statistic not in STATISTICS or len(bounds) != 2 or float(bounds[0]) > float(bounds[1]):
                    raise ValueError(
                        f"{path}: {feature}.{statistic} must be one of {', '.join(STATISTICS)} with [warn, alert], "
                        f"warn <= alert (got {bounds!r})"
                    )
                overrides[feature][statistic] = (float(bounds[0]), float(bounds[1]))
    return Thresholds(defaults, overrides)
