"""The FastAPI application: lifespan (load the model and the feature reader once), routers, error
handlers and the metrics middleware. ``uvicorn --factory api.main:create_app`` or ``spanishgas serve``."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.routers import health, model, score
from spanishgas.serving.keys import ApiKeys
from spanishgas.serving.metrics import NO_MODEL, ONLINE_STORE, Metrics
from spanishgas.serving.online import OnlineStoreUnavailable
from spanishgas.serving.service import (
    CustomerNotFound,
    InvalidFeatures,
    NoModel,
    ScoringService,
    what_if_feature_names,
)
from spanishgas.settings import Settings, get_settings

log = logging.getLogger("spanishgas.api")


def create_app(
    settings: Settings | None = None, service_factory: Callable[[Settings, Metrics], ScoringService] | None = None
) -> FastAPI:
    """The scoring API. Nothing is loaded until the app starts (lifespan)."""
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from spanishgas.serving import build_service

        if not settings.api.api_keys:
            raise RuntimeError("no API keys configured: set SPANISHGAS_API__API_KEYS (a JSON list) before serving")
        service = (service_factory or build_service)(settings, metrics)
        if not service.load():
            log.warning("starting without a model: %s", service.last_load_error)
        service.start_watching()
        app.state.service = service
        try:
            yield
        finally:
            service.stop_watching()

    app = FastAPI(
        title="SpanishGas churn scoring API",
        version="1.0.0",
        description="Churn risk, reasons in plain words and the retention action for call-center agents.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.api_keys = ApiKeys(settings.api.api_keys)
    app.include_router(score.build_router(what_if_feature_names(), settings.api.batch_max_customers))
    app.include_router(model.router)
    app.include_router(health.router)
    _error_handlers(app, settings)
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _error_handlers(app: FastAPI, settings: Settings) -> None:
    @app.exception_handler(CustomerNotFound)
    async def not_found(request: Request, exc: CustomerNotFound) -> JSONResponse:
        return _problem(404, str(exc))

    @app.exception_handler(InvalidFeatures)
    async def invalid(request: Request, exc: InvalidFeatures) -> JSONResponse:
        return JSONResponse({"detail": [{"loc": list(exc.loc), "msg": str(exc), "type": "value_error"}]}, 422)

    @app.exception_handler(NoModel)
    async def no_model(request: Request, exc: NoModel) -> JSONResponse:
        request.app.state.metrics.unavailable_response(NO_MODEL)
        return _problem(503, f"no model to score with: {exc}", {"Retry-After": "30"})

    @app.exception_handler(OnlineStoreUnavailable)
    async def store_down(request: Request, exc: OnlineStoreUnavailable) -> JSONResponse:
        request.app.state.metrics.unavailable_response(ONLINE_STORE)
        retry_after = str(max(1, math.ceil(settings.api.online_store_backoff_s)))
        return _problem(503, f"feature store unavailable, try again shortly ({exc})", {"Retry-After": retry_after})

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Where and why only: echoing the input back could fail (NaN is not JSON) and says nothing new.
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return _problem(500, "internal error; the service logged the details")


class RequestMetrics:
    """Counts and times every request by route template (a plain ASGI middleware: cheap per request)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            # Route templates only: raw paths would put customer ids into label values.
            name = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(name, scope["method"], status, time.perf_counter() - started)
