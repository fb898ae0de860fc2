"""Dependencies shared by the routes: the scoring service and API-key authentication."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Query, Request, Security, status
from fastapi.security import APIKeyHeader

from spanishgas.i18n import Language, negotiate
from spanishgas.serving.keys import ApiKeys
from spanishgas.serving.service import ScoringService

API_KEY_HEADER = "X-API-Key"
_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="a key from SPANISHGAS_API__API_KEYS")


# Both dependencies are `async def` although they do not await: FastAPI runs plain `def` dependencies in
# its thread pool, and two extra thread hops per request cost more than the scoring of a cached answer.
async def get_service(request: Request) -> ScoringService:
    """The scoring service the lifespan started."""
    return request.app.state.service  # type: ignore[no-any-return]


async def require_api_key(request: Request, key: Annotated[str | None, Security(_api_key)] = None) -> None:
    """401 unless the request carries one of the configured keys (compared in constant time)."""
    check_api_key(request, key)


def check_api_key(request: Request, key: str | None) -> None:
    """Raise 401 unless ``key`` is one of the configured keys (:class:`ApiKeys`: digests compared with
    each in constant time)."""
    keys: ApiKeys = request.app.state.api_keys
    if not keys.accepts(key):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail=f"missing or invalid API key (send it in the {API_KEY_HEADER} header)",
            headers={"WWW-Authenticate": "ApiKey"},
        )


async def answer_language(
    request: Request,
    lang: Annotated[Language | None, Query(description="es or en; wins over Accept-Language")] = None,
    accept_language: Annotated[str | None, Header(description="e.g. es-ES, en;q=0.8")] = None,
) -> Language:
    """The language of the answer's phrases: ``?lang=``, else the best match of ``Accept-Language``,
    else the settings' default."""
    if lang is not None:
        return lang
    return negotiate(accept_language, request.app.state.service.settings.retention.language)


Service = Annotated[ScoringService, Depends(get_service)]
AnswerLanguage = Annotated[Language, Depends(answer_language)]
Authorized = Depends(require_api_key)
