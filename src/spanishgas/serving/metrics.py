"""Prometheus metrics of the scoring API.

Labels are routes (templates such as ``/score/{customer_id}``), methods, statuses and risk tiers, never
customer ids, so the number of series stays fixed. With several uvicorn workers, ``spanishgas serve``
sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start and ``/metrics`` aggregates every worker.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from spanishgas.serving.service import ServedModel

# Fine below 20 ms, where the call-center targets are (p50 2 ms, p99 5-15 ms).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


# Why the API answered 503 (label values of spanishgas_api_unavailable_responses_total).
NO_MODEL = "no_model"
ONLINE_STORE = "online_store"
UNAVAILABLE_REASONS = (NO_MODEL, ONLINE_STORE)


def _version_number(version: str) -> float:
    """MLflow registry versions are integers; anything else reads as 0 (unknown)."""
    try:
        return float(int(version))
    except (TypeError, ValueError):
        return 0.0


class Metrics:
    """The API's metrics in their own registry (several apps in one process, as in tests, do not clash)."""

    def __init__(self) -> None:
        from prometheus_client import values

        self.registry = CollectorRegistry(auto_describe=True)
        # prometheus_client chose where values live once, when it was imported: in memory, or in files under
        # PROMETHEUS_MULTIPROC_DIR. Values in memory must be exposed from memory even if the variable
        # appears later (Feast sets it when it first reads online features).
        self._in_memory = values.ValueClass is values.MutexValue
        self._model_labels: tuple[str, str, str] | None = None
        r = self.registry
        self.requests = Counter(
            "spanishgas_api_requests", "HTTP requests answered", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "spanishgas_api_request_seconds",
            "Time to answer a request, by route",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.fetch = Histogram(
            "spanishgas_api_feature_fetch_seconds", "Online feature reads", buckets=LATENCY_BUCKETS, registry=r
        )
        self.model = Histogram(
            "spanishgas_api_model_seconds",
            "Scoring, explaining and recommending for vectors not in the cache",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "spanishgas_api_predictions",
            "Scores answered, by risk tier and model version",
            ["risk_tier", "model_version"],
            registry=r,
        )
        self.cache_lookups = Counter(
            "spanishgas_api_score_cache_lookups", "Scored-vector cache lookups", ["result"], registry=r
        )
        self.store_errors = Counter(
            "spanishgas_api_online_store_errors", "Online store reads that failed or timed out", registry=r
        )
        self.unavailable = Counter(
            "spanishgas_api_unavailable_responses",
            "503 answers, by reason (no model loaded, online store unavailable)",
            ["reason"],
            registry=r,
        )
        for reason in UNAVAILABLE_REASONS:  # every reason has a series from the start, at zero
            self.unavailable.labels(reason)
        # Several workers: the minimum, so one worker without a model shows as "not loaded".
        self.model_loaded_flag = Gauge(
            "spanishgas_api_model_loaded", "1 when a model is loaded", registry=r, multiprocess_mode="livemin"
        )
        self.served_version = Gauge(
            "spanishgas_api_served_model_version",
            "Registry version of the served churn model (0: none)",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.champion_version = Gauge(
            "spanishgas_api_registry_champion_version",
            "Version the registry's champion alias pointed at when last checked (0: not known yet)",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.model_info = Gauge(
            "spanishgas_api_model_info",
            "The served model version (value 1)",
            ["name", "version", "segment_version"],
            registry=r,
            multiprocess_mode="livemax",
        )

    # Hooks the scoring service calls.
    def model_loaded(self, served: ServedModel) -> None:
        """Point the model-info series at the newly served version."""
        # Zero the old series rather than removing it: in multiprocess mode the value lives on in the
        # worker's file, and a stale 1 would claim two versions are served.
        if self._model_labels is not None:
            self.model_info.labels(*self._model_labels).set(0)
        self._model_labels = (served.name, served.version, served.segment_version)
        self.model_info.labels(*self._model_labels).set(1)
        self.model_loaded_flag.set(1)
        self.served_version.set(_version_number(served.version))
        self.champion_version.set(_version_number(served.version))

    def registry_checked(self, champion_version: str | None) -> None:
        """Where the registry's champion alias points now (compared with the served version by an alert)."""
        if champion_version is not None:
            self.champion_version.set(_version_number(champion_version))

    def unavailable_response(self, reason: str) -> None:
        """One 503 answer (``reason`` from :data:`UNAVAILABLE_REASONS`)."""
        self.unavailable.labels(reason).inc()

    def feature_fetch(self, seconds: float) -> None:
        """One online read."""
        self.fetch.observe(seconds)

    def model_time(self, seconds: float) -> None:
        """One scoring pass."""
        self.model.observe(seconds)

    def prediction(self, tier: str, model_version: str) -> None:
        """One score answered."""
        self.predictions.labels(tier, model_version).inc()

    def cache(self, hits: int, misses: int) -> None:
        """Cache lookups of one request."""
        if hits:
            self.cache_lookups.labels("hit").inc(hits)
        if misses:
            self.cache_lookups.labels("miss").inc(misses)

    def online_store_error(self) -> None:
        """A failed or timed-out read."""
        self.store_errors.inc()

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition (every worker's, in multiprocess mode) and its content type."""
        if not self._in_memory and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
