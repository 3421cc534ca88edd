"""Credentials module (credentials.asciidoc): registration, token rotation,
unregistration. Symmetric; served at ``/ocpi/2.2.1/credentials``."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, Request

from api.auth import CallerDep
from api.deps import ContainerDep, CorrelationIdDep
from api.errors import OcpiError, envelope
from ocpi_hub.bootstrap import Container, credentials_service
from ocpi_hub.secrets import hash_token, new_token
from producers.credentials import CredentialsService
from producers.partner_client import PartnerCallError
from producers.partners import NotAllowedError
from producers.registration import UnsupportedVersionError
from schemas.events import Party
from schemas.ocpi.credentials import Credentials
from schemas.ocpi.status_codes import OcpiStatus

router = APIRouter(prefix="/ocpi/2.2.1/credentials", tags=["ocpi: credentials"])
log = structlog.get_logger(__name__)


def service(c: Container, request: Request) -> CredentialsService:
    return credentials_service(c, request.app.state.event_log)


def _not_allowed(exc: NotAllowedError) -> OcpiError:
    # credentials.asciidoc: POST/PUT/DELETE in the wrong state MUST be HTTP 405.
    return OcpiError(OcpiStatus.CLIENT_ERROR, str(exc), 405)


@router.get("")
def get_credentials(caller: CallerDep, c: ContainerDep, request: Request) -> dict[str, Any]:
    """Our credentials, carrying the token the caller uses with us."""
    return envelope(service(c, request).our_credentials(caller.token).model_dump(mode="json"))


async def _connect(
    method: str, body: Credentials, caller: CallerDep, c: Container, request: Request, corr: str
) -> dict[str, Any]:
    if method == "POST" and not caller.with_token_a:
        raise _not_allowed(NotAllowedError("already registered: use PUT to update"))
    token = new_token()
    try:
        await service(c, request).accept(
            caller.partner, "POST" if method == "POST" else "PUT", body, hash_token(token), corr
        )
    except NotAllowedError as exc:
        raise _not_allowed(exc) from exc
    except UnsupportedVersionError as exc:
        raise OcpiError(OcpiStatus.UNSUPPORTED_VERSION, str(exc)) from exc
    except PartnerCallError as exc:
        # credentials.asciidoc, "Errors during registration": 3001.
        raise OcpiError(OcpiStatus.UNABLE_TO_USE_CLIENT_API, str(exc)) from exc
    log.info("partner_connected", partner_id=caller.partner.partner_id, method=method)
    return envelope(service(c, request).our_credentials(token).model_dump(mode="json"))


@router.post("")
async def post_credentials(
    body: Credentials, caller: CallerDep, c: ContainerDep, request: Request, corr: CorrelationIdDep
) -> dict[str, Any]:
    return await _connect("POST", body, caller, c, request, corr)


@router.put("")
async def put_credentials(
    body: Credentials, caller: CallerDep, c: ContainerDep, request: Request, corr: CorrelationIdDep
) -> dict[str, Any]:
    if caller.with_token_a:
        raise _not_allowed(NotAllowedError("not registered: use POST to register"))
    return await _connect("PUT", body, caller, c, request, corr)


@router.delete("")
async def delete_credentials(
    caller: CallerDep, c: ContainerDep, request: Request, corr: CorrelationIdDep
) -> dict[str, Any]:
    if caller.with_token_a:
        raise _not_allowed(NotAllowedError("not registered"))
    us = Party(country_code=c.settings.party_country_code, party_id=c.settings.party_id)
    try:
        await service(c, request).unregister(caller.partner, us, corr)
    except NotAllowedError as exc:
        raise _not_allowed(exc) from exc
    return envelope()
