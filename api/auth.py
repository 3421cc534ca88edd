"""OCPI authorization (transport_and_format, "Authorization header").

The encoding follows the OCPI version of the route (docs/adr/0045):
``Authorization: Token <base64(token)>`` on 2.2.1 routes, where a partner
flagged as legacy, or registered for 2.1.1, may send the token un-encoded;
``Token <token>`` as is on 2.1.1 routes; on ``/ocpi/versions``, which a
partner calls before it has chosen a version, a TOKEN_A either way while
2.1.1 is offered. A missing or unknown
token is HTTP 401; a TOKEN_A is accepted only on the versions and
credentials endpoints. A registered partner uses the functional modules of
the version it registered with; another version's route is refused (2000).
A version we do not offer is 3002 (HTTP 404 on a GET, api/errors.py's rule). Tokens are compared
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

from api.errors import OcpiError
from ocpi_hub.secrets import hash_token
from producers.lookups import LookupCache
from producers.partners import PartnerState
from schemas.ocpi.adapters import WIRES
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.wire import CORE_VERSION, WireVersion

_HEADERS = {"WWW-Authenticate": "Token"}


@dataclass(frozen=True)
class Caller:
    partner: PartnerState
    token: str
    with_token_a: bool
    # The OCPI version of the route called (None: /ocpi/versions).
    version: str | None = None

    @property
    def wire(self) -> WireVersion:
        return WIRES[self.version or CORE_VERSION]


def wire_of(request: Request) -> WireVersion:
    """The edge adapter of the request's OCPI version (set when its caller
    was checked); our own model's for every other request (the ops API)."""
    return WIRES[getattr(request.state, "ocpi_version", None) or CORE_VERSION]


def route_version(request: Request) -> str | None:
    """The OCPI version a route is for (its ``{version}`` path parameter, or
    the fixed one in its path), None for ``/ocpi/versions``; refused with
    3002 when we do not offer it, or do not serve the module in it."""
    parts = request.url.path.split("/")  # "", "ocpi", ("cpo"|"emsp"), version, module
    offered = request.app.state.container.settings.offered_versions
    version = request.path_params.get("version")
    if version is None:
        fixed = next((p for p in parts[2:4] if p and p[0].isdigit()), None)
        if fixed is None:
            return None
        version = fixed
    index = parts.index(version) if version in parts else len(parts)
    module = parts[index + 1] if index + 1 < len(parts) else None
    served = WIRES.get(version)
    # Our own model's version serves every module we have; an adapter only its own.
    adapted = version != CORE_VERSION and module is not None
    if version not in offered or served is None or (adapted and module not in served.modules):
        where = f"the {module} module in " if module and served else ""
        raise OcpiError(
            OcpiStatus.UNSUPPORTED_VERSION,
            f"we do not serve {where}OCPI {version!r}; we offer {', '.join(offered)}",
            404,
        )
    return version


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


def _speaks_raw(state: PartnerState) -> bool:
    """May send its token un-encoded on a 2.2.1 route: a partner flagged as
    legacy, or one registered for a version whose tokens are raw (its calls
    then end in a clear version error, not in "unknown token")."""
    if state.legacy_token:
        return True
    spoken = WIRES.get(state.version or CORE_VERSION)
    return state.status == "registered" and spoken is not None and spoken.raw_token


async def _caller_of(
    partners: LookupCache[PartnerState],
    authorization: str | None,
    version: str | None,
    raw_ok: bool = False,
) -> Caller:
    """``raw_ok``: a version whose tokens go un-encoded is offered."""
    if not authorization or not authorization.startswith("Token "):
        raise _unauthorized("missing 'Authorization: Token ...' header")
    raw = authorization.removeprefix("Token ").strip()
    if version is not None and WIRES[version].raw_token:
        found = await _partner(partners, raw)
        if found is None:
            raise _unauthorized(f"unknown token (OCPI {version}: the token as is, not encoded)")
        return Caller(found[0], raw, found[1], version)
    decoded = _decoded(raw)
    if decoded is not None and (found := await _partner(partners, decoded)):
        return Caller(found[0], decoded, found[1], version)
    plain = await _partner(partners, raw)
    if plain is not None and (_speaks_raw(plain[0]) or (version is None and plain[1] and raw_ok)):
        # On /ocpi/versions a partner with its TOKEN_A has not chosen a
        # version yet: it may be one that sends tokens as they are.
        return Caller(plain[0], raw, plain[1], version)
    if plain is not None:
        raise _unauthorized(f"on OCPI {version} routes the token is base64-encoded")
    raise _unauthorized("unknown token")


async def caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Caller:
    """The partner behind the request's token: TOKEN_A or a registered token."""
    version = request.state.ocpi_version = route_version(request)
    offered = request.app.state.container.settings.offered_versions
    raw_ok = any(WIRES[v].raw_token for v in offered)
    return await _caller_of(request.app.state.partner_tokens, authorization, version, raw_ok)


async def registered_caller(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Caller:
    """Functional modules: only a registered partner's token (not TOKEN_A).

    Built from the request rather than on ``caller``: this is on the path of
    every partner request, and FastAPI's cost grows with each dependency."""
    version = request.state.ocpi_version = route_version(request)
    found = await _caller_of(request.app.state.partner_tokens, authorization, version)
    if found.with_token_a:
        raise _unauthorized(
            "a registration token (TOKEN_A) is valid only on versions and credentials"
        )
    registered_for = found.partner.version or CORE_VERSION
    if version is not None and registered_for != version:
        raise OcpiError(
            OcpiStatus.CLIENT_ERROR,
            f"this partner registered for OCPI {registered_for}: use its endpoints, "
            f"not OCPI {version}'s (a credentials PUT changes the version)",
        )
    # Who reads: a Sender list answered in full stamps the partner's pull
    # (api/pagination.py).
    request.state.partner_id = found.partner.partner_id
    return found


CallerDep = Annotated[Caller, Depends(caller)]
RegisteredCallerDep = Annotated[Caller, Depends(registered_caller)]
