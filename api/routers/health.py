"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.deps import Service, check_api_key
from spanishgas.serving.schemas import Health, Readiness

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health)
def health() -> Health:
    """The process is alive (says nothing about the model or the store)."""
    return Health()


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
def ready(service: Service) -> Response:
    """Ready when a model is loaded and the online store answers; 503 with the reason otherwise."""
    ok, detail = service.readiness()
    served = service.served
    body = Readiness(
        ready=ok,
        model_version=served.version if served else None,
        online_store=type(service.reader).__name__,
        detail=detail,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text exposition (behind the API key when SPANISHGAS_API__METRICS_REQUIRE_KEY is set)."""
    if request.app.state.settings.api.metrics_require_key:
        check_api_key(request, request.headers.get("X-API-Key"))
    body, content_type = request.app.state.metrics.exposition()
    return Response(body, media_type=content_type)
