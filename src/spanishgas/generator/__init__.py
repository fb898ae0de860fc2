"""Statistically faithful synthetic SpanishGas deliveries (the real data is private)."""

from spanishgas.generator.config import Dirtiness, GeneratorConfig, HazardCoefficients, Scenario
from spanishgas.generator.delivery import GenerationReport, config_from_manifest, generate

__all__ = [
    "Dirtiness",
    "GenerationReport",
    "GeneratorConfig",
    "HazardCoefficients",
    "Scenario",
    "config_from_manifest",
    "generate",
]
