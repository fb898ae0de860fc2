"""Scoring routes: one customer, a what-if vector, a batch of customers.

Built by a function because two request schemas depend on configuration (the batch limit) and on the
feature registry (the what-if feature names); no `from __future__ import annotations` here, so FastAPI
sees those types."""

from typing import Annotated

from fastapi import APIRouter, Path, Response

from api.deps import AnswerLanguage, Authorized, Service
from spanishgas.serving.schemas import (
    CUSTOMER_ID_PATTERN,
    BatchResponse,
    Invalid,
    Problem,
    ScoreResponse,
    batch_request_model,
    what_if_request_model,
)

ERRORS = {
    401: {"model": Problem, "description": "missing or invalid API key"},
    422: {"model": Invalid, "description": "the request is malformed"},
    503: {"model": Problem, "description": "no model yet, or the online store is unavailable"},
}
NOT_FOUND = {404: {"model": Problem, "description": "the online store has no features for this customer"}}


def build_router(what_if_features: list[str], batch_limit: int) -> APIRouter:
    """The scoring routes, behind the API key."""
    what_if_request = what_if_request_model(what_if_features)
    batch_request = batch_request_model(batch_limit)
    router = APIRouter(prefix="/score", tags=["scoring"], dependencies=[Authorized], responses=ERRORS)

    @router.get("/{customer_id}", response_model=ScoreResponse, responses=NOT_FOUND)
    async def score_customer(
        customer_id: Annotated[str, Path(pattern=CUSTOMER_ID_PATTERN, examples=["C00042"])],
        service: Service,
        lang: AnswerLanguage,
    ) -> Response:
        """Churn probability, risk tier, segment, reason codes and the recommended action for a customer."""
        # Async on purpose: the work is a bounded Redis read (timeout) and microseconds of Python, so a
        # thread-pool hop would cost more than it saves. The answer is already a validated ScoreResponse:
        # serialize it once instead of letting FastAPI validate it again.
        answer = service.score_customer(customer_id, lang)
        return Response(answer.model_dump_json(), media_type="application/json", headers={"Content-Language": lang})

    @router.post("", response_model=ScoreResponse, responses=NOT_FOUND)
    def score_what_if(request: what_if_request, service: Service, lang: AnswerLanguage) -> ScoreResponse:  # type: ignore[valid-type]
        """Score changed features ("what if we lower the price 5 %?"): a customer's features with some
        values replaced, or a vector of its own (features left out are unknown and listed as such)."""
        return service.score_what_if(request.customer_id, request.feature_values(), lang)  # type: ignore[attr-defined]

    @router.post("/batch", response_model=BatchResponse)
    def score_batch(request: batch_request, service: Service, lang: AnswerLanguage) -> BatchResponse:  # type: ignore[valid-type]
        """Scores of several customers and the ids the store does not know."""
        scores, missing = service.score_customers(request.customer_ids, lang)  # type: ignore[attr-defined]
        return BatchResponse(scores=scores, not_found=missing)

    return router
