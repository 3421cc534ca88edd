"""Credentials module (credentials.asciidoc): registration, token rotation,
unregistration. Symmetric; served at ``/ocpi/{version}/credentials`` for
every version we offer, in that version's shape (2.1.1: the party at the top
level, no roles; docs/adr/0045). The version of the endpoint a partner
registers at (POST) or updates at (PUT) is the version recorded for it.

Writes go through the one write path (docs/adr/0022) in the credentials
service; refusals (HTTP 405 in the wrong state, 3001/3002 when the partner's
own API cannot be used) become OCPI envelopes in ``api/errors.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends

from api.auth import Caller, CallerDep
from api.deps import ContainerDep, CorrelationIdDep
from api.errors import envelope
from api.ocpi.paths import VersionPath
from api.writes import JsonBody, WritePathDep, body_of
from ocpi_hub.bootstrap import credentials_service
from ocpi_hub.secrets import hash_token, new_token
from producers.credentials import CredentialsService, partner_role
from producers.partners import NotAllowedError
from schemas.ocpi.credentials import Credentials

router = APIRouter(prefix="/ocpi/{version}/credentials", tags=["ocpi: credentials"])
log = structlog.get_logger(__name__)


async def _service(c: ContainerDep, write_path: WritePathDep) -> CredentialsService:
    return credentials_service(c, write_path)


ServiceDep = Annotated[CredentialsService, Depends(_service)]


@router.get("")
async def get_credentials(
    version: VersionPath, caller: CallerDep, service: ServiceDep
) -> dict[str, Any]:
    """Our credentials, carrying the token the caller uses with us."""
    return envelope(caller.wire.credentials_out(service.our_credentials(caller.token)))


@router.post("", openapi_extra=body_of(Credentials))
async def post_credentials(
    version: VersionPath,
    body: JsonBody,
    caller: CallerDep,
    service: ServiceDep,
    correlation_id: CorrelationIdDep,
) -> dict[str, Any]:
    """They register with TOKEN_A: we fetch their endpoints with their token
    and answer with the token they are to use with us from now on."""
    if not caller.with_token_a:
        raise NotAllowedError("already registered: use PUT to update")
    return await _connect("POST", body, caller, service, correlation_id)


@router.put("", openapi_extra=body_of(Credentials))
async def put_credentials(
    version: VersionPath,
    body: JsonBody,
    caller: CallerDep,
    service: ServiceDep,
    correlation_id: CorrelationIdDep,
) -> dict[str, Any]:
    """They update their credentials (a new token for us, new endpoints);
    we answer with a new token for them, and the one they used stops working."""
    _registered(caller, "not registered: use POST to register")
    return await _connect("PUT", body, caller, service, correlation_id)


async def _connect(
    method: Literal["POST", "PUT"],
    body: Any,
    caller: Caller,
    service: CredentialsService,
    correlation_id: str,
) -> dict[str, Any]:
    theirs = caller.wire.credentials_in(body, partner_role(caller.partner))
    token = new_token()
    presented, issued = hash_token(caller.token), hash_token(token)
    version = caller.wire.version
    await service.accept(caller.partner, presented, method, theirs, issued, correlation_id, version)
    log.info(
        "partner_connected", partner_id=caller.partner.partner_id, method=method, version=version
    )
    return envelope(caller.wire.credentials_out(service.our_credentials(token)))


@router.delete("")
async def delete_credentials(
    version: VersionPath, caller: CallerDep, service: ServiceDep, correlation_id: CorrelationIdDep
) -> dict[str, Any]:
    """They end the registration: none of their tokens works any more."""
    _registered(caller, "not registered")
    await service.unregister(caller.partner, hash_token(caller.token), correlation_id)
    return envelope()


def _registered(caller: Caller, message: str) -> None:
    # credentials.asciidoc: PUT and DELETE before registration MUST be HTTP 405.
    if caller.with_token_a:
        raise NotAllowedError(message)
