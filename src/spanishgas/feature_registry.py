"""The documented model features and the experiment sets, read from ``resources/*.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

TIERS = ("lifecycle", "market", "risk", "behaviour", "sentiment", "compound")
# Contacts are looked at this many days back; a "days since the last ..." feature without such a contact
# in that time reads NO_CONTACT_DAYS.
CONTACT_LOOKBACK_DAYS = 365
NO_CONTACT_DAYS = 999


@dataclass(frozen=True)
class Feature:
    """One model feature of gold's ``customer_features_asof``."""

    name: str
    tier: str
    meaning: str
    window: str


@lru_cache(maxsize=1)
def features() -> tuple[Feature, ...]:
    """Every feature, in tier order."""
    raw = yaml.safe_load(resources.files("spanishgas.resources").joinpath("features.yaml").read_text())
    unknown = set(raw) - set(TIERS)
    if unknown:
        raise ValueError(f"features.yaml has unknown tiers: {sorted(unknown)}")
    return tuple(Feature(tier=tier, **item) for tier in TIERS for item in raw.get(tier, []))


def feature_names(tiers: list[str] | tuple[str, ...] = TIERS) -> list[str]:
    """Names of the features in ``tiers``."""
    return [f.name for f in features() if f.tier in tiers]


@lru_cache(maxsize=1)
def experiments() -> dict[str, dict[str, object]]:
    """Experiment sets E0-E8: tiers and a description each."""
    raw = yaml.safe_load(resources.files("spanishgas.resources").joinpath("experiments.yaml").read_text())
    for name, spec in raw.items():
        bad = set(spec["tiers"]) - set(TIERS)
        if bad:
            raise ValueError(f"experiment {name} names unknown tiers {sorted(bad)}")
    return raw


def experiment_features(name: str) -> list[str]:
    """Feature names of one experiment set."""
    sets = experiments()
    if name not in sets:
        raise KeyError(f"unknown experiment {name!r}; known: {', '.join(sets)}")
    return feature_names(tuple(sets[name]["tiers"]))  # type: ignore[arg-type]


def features_markdown() -> str:
    """docs/features.md, generated from the registry."""
    lines = [
        "# Model features (gold `customer_features_asof`)",
        "",
        "Generated from `src/spanishgas/resources/features.yaml` by `spanishgas features-doc`; edit the YAML.",
        "Grain: one row per customer and monthly as-of date (the first day of a month). Every feature uses",
        "only data strictly before the as-of date: months before its month, contacts before its day, the",
        "contract as it stood that day.",
        "",
    ]
    for tier in TIERS:
        lines += [f"## {tier}", "", "| feature | meaning | window |", "|---|---|---|"]
        lines += [f"| `{f.name}` | {f.meaning} | {f.window} |" for f in features() if f.tier == tier]
        lines.append("")
    lines += ["## Experiment sets", "", "| set | tiers | what it tests |", "|---|---|---|"]
    for name, spec in experiments().items():
        lines.append(f"| {name} | {', '.join(spec['tiers'])} | {spec['description']} |")  # type: ignore[arg-type]
    return "\n".join(lines) + "\n"
