"""Online scoring for the call center: feature readers, the scoring service and its metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spanishgas.serving.metrics import Metrics
    from spanishgas.serving.service import ScoringService
    from spanishgas.settings import Settings


def build_service(settings: Settings, metrics: Metrics | None = None) -> ScoringService:
    """The scoring service for the settings' profile: its feature store, the fastest reader, metrics."""
    from spanishgas.feature_store.store import get_store
    from spanishgas.serving.online import reader_for
    from spanishgas.serving.service import ScoringService

    store = get_store(settings)
    return ScoringService(settings, reader_for(settings, store), observer=metrics)


def run_server(
    settings: Settings, host: str | None = None, port: int | None = None, workers: int | None = None
) -> None:
    """Serve the API with uvicorn (blocks). Several workers share one Prometheus exposition through a
    multiprocess directory created here and removed on exit."""
    import os
    import shutil
    import tempfile

    import uvicorn

    if not settings.api.api_keys:
        raise ValueError("no API keys configured: set SPANISHGAS_API__API_KEYS (a JSON list) before serving")
    workers = workers or settings.api.workers
    multiproc = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Must be set before any worker imports prometheus_client.
        multiproc = tempfile.mkdtemp(prefix="spanishgas-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiproc
    try:
        uvicorn.run(
            "api.main:create_app",
            factory=True,
            host=host or settings.api.host,
            port=port or settings.api.port,
            workers=workers,
            # Requests are counted and timed in /metrics; a log line per request would cost more than the
            # scoring itself at the call center's rates.
            access_log=False,
            log_level="info",
        )
    finally:
        if multiproc:
            shutil.rmtree(multiproc, ignore_errors=True)
