"""OCPI authorization (transport_and_format, "Authorization header").

``Authorization: Token <base64(token)>``. A partner flagged as legacy may send
the token un-encoded. A missing or unknown token is HTTP 401; a TOKEN_A is
accepted only on the versions and credentials endpoints. Tokens are compared
by their SHA-256 hash and never logged.

The partner is found by that hash in the decision store, where a
registration or rotation put it in the same commit as the partner's state,
through this process's cache of those finds (docs/adr/0024).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from api.deps import PartnerTokensDep
from api.errors import OcpiError
from ocpi_hub.secrets import hash_token
from producers.lookups import LookupCache
from producers.partners import PartnerState
from schemas.ocpi.status_codes import OcpiStatus

_HEADERS = {"WWW-Authenticate": "Token"}


@dataclass(frozen=True)
class Caller:
    partner: PartnerState
    token: str
    with_token_a: bool


def _unauthorized(message: str) -> OcpiError:
    return OcpiError(OcpiStatus.CLIENT_ERROR, message, 401, headers=_HEADERS)


def _decoded(raw: str) -> str | None:
    try:
        text = base64.b64decode(raw, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return text if text.isprintable() and text.strip() == text and text else None


async def _partner(
    partners: LookupCache[PartnerState], token: str
) -> tuple[PartnerState, bool] | None:
    """The partner that may present ``token`` now, and whether it is its TOKEN_A."""
    token_hash = hash_token(token)
    state = await partners.find(token_hash)
    if state is None:
        return None
    if state.status == "registered" and state.their_token_hash == token_hash:
        return state, False
    if state.status == "invited" and state.token_a_hash == token_hash:
        return state, True
    return None


async def _caller_of(partners: LookupCache[PartnerState], authorization: str | None) -> Caller:
    if not authorization or not authorization.startswith("Token "):
        raise _unauthorized("missing 'Authorization: Token ...' header")
    raw = authorization.removeprefix("Token ").strip()
    decoded = _decoded(raw)
    if decoded is not None and (found := await _partner(partners, decoded)):
        return Caller(found[0], decoded, found[1])
    legacy = await _partner(partners, raw)
    if legacy is not None and legacy[0].legacy_token:
        return Caller(legacy[0], raw, legacy[1])
    raise _unauthorized("unknown token")


async def caller(
    partners: PartnerTokensDep, authorization: Annotated[str | None, Header()] = None
) -> Caller:
    """The partner behind the request's token: TOKEN_A or a registered token."""
    return await _caller_of(partners, authorization)


async def registered_caller(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Caller:
    """Functional modules: only a registered partner's token (not TOKEN_A).

    Built from the request rather than on ``caller``: this is on the path of
    every partner request, and FastAPI's cost grows with each dependency."""
    found = await _caller_of(request.app.state.partner_tokens, authorization)
    if found.with_token_a:
        raise _unauthorized(
            "a registration token (TOKEN_A) is valid only on versions and credentials"
        )
    # Who reads: a Sender list answered in full stamps the partner's pull
    # (api/pagination.py).
    request.state.partner_id = found.partner.partner_id
    return found


CallerDep = Annotated[Caller, Depends(caller)]
RegisteredCallerDep = Annotated[Caller, Depends(registered_caller)]
