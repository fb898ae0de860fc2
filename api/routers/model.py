"""What is being served."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Authorized, Service
from spanishgas.serving.schemas import ModelInfo, Problem

router = APIRouter(tags=["model"])


@router.get(
    "/model",
    response_model=ModelInfo,
    dependencies=[Authorized],
    responses={401: {"model": Problem}, 503: {"model": Problem, "description": "no model loaded yet"}},
)
def model_info(service: Service) -> ModelInfo:
    """The served model's name, version, alias, forward-test metrics, feature service and load time."""
    return service.model_info()
