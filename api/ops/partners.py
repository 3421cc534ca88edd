"""Ops API of our roaming partners: what the ``ocpi-hub partners`` commands
do, for the dashboard and for scripts (docs/adr/0034).

* ``GET /ops/partners``: every partner, its registration state, roles,
  OCPI version and endpoints (never a token or a hash).
* ``POST /ops/partners``: invite one; the answer carries its TOKEN_A, once
  (only its hash is recorded), and our versions URL to hand over with it.
* ``POST /ops/partners/{partner_id}/rotate``: give a registered partner a new
  token to call us with (credentials PUT towards it).
* ``DELETE /ops/partners/{partner_id}?local_only=``: end a registration
  (credentials DELETE towards it, unless ``local_only``: a partner gone for
  good).

The writes go through the credentials service on the write path, as the
commands' do, and record who asked (ADR 0031).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ContainerDep, CorrelationIdDep
from api.errors import OcpiError, envelope
from api.ocpi.credentials import ServiceDep
from api.ops.access import OPS_ACCESS
from ocpi_hub.secrets import hash_token, new_token
from producers.partner_client import PartnerCallError
from producers.partners import PartnerState
from schemas.ocpi.credentials import Role
from schemas.ocpi.status_codes import OcpiStatus

Json = dict[str, Any]

router = APIRouter(prefix="/ops/partners", tags=["ops: partners"], dependencies=[OPS_ACCESS])

PartnerIdPath = Annotated[str, Path(min_length=1, max_length=40)]


def shown(state: PartnerState) -> Json:
    """A partner without its secrets."""
    return state.model_dump(
        mode="json", exclude={"token_a_hash", "their_token_hash", "our_token_encrypted"}
    )


class Invitation(BaseModel):
    """Whom to invite: the party it will speak for and its role."""

    model_config = ConfigDict(extra="forbid")

    country_code: str = Field(pattern=r"^[A-Za-z]{2}$")
    party_id: str = Field(pattern=r"^[A-Za-z0-9]{3}$")
    role: Role
    partner_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,40}$")
    legacy_token: bool = False


@router.get("")
async def list_partners(c: ContainerDep) -> Json:
    return envelope([shown(p) for p in await c.partners.all()])


@router.get("/{partner_id}/client-info")
async def list_partner_client_info(partner_id: PartnerIdPath, c: ContainerDep) -> Json:
    """What a hub partner reported about the parties behind it
    (mod_hub_client_info, docs/adr/0044): each party's role, status, the
    hub's ``last_updated`` and when we first saw it CONNECTED."""
    return envelope(await c.hub_client_info.listed(partner_id))


@router.post("")
async def invite_partner(
    body: Invitation, c: ContainerDep, service: ServiceDep, correlation_id: CorrelationIdDep
) -> Json:
    pid = body.partner_id or f"{body.country_code}-{body.party_id}".upper()
    token_a = new_token()
    await service.invite(
        partner_id=pid,
        country_code=body.country_code,
        party_id=body.party_id,
        role=body.role,
        token_a_hash=hash_token(token_a),
        legacy_token=body.legacy_token,
        correlation_id=correlation_id,
    )
    # Shown this once: only its hash is recorded.
    return envelope(
        {
            "partner_id": pid,
            "token_a": token_a,
            "versions_url": f"{c.settings.base_url}/ocpi/versions",
        }
    )


def _unusable(exc: Exception) -> OcpiError:
    return OcpiError(
        OcpiStatus.UNABLE_TO_USE_CLIENT_API, f"the partner could not be reached: {exc}", 502
    )


@router.post("/{partner_id}/rotate")
async def rotate_partner_token(partner_id: PartnerIdPath, service: ServiceDep) -> Json:
    token = new_token()
    try:
        state = await service.update_with(
            partner_id, new_token=token, new_token_hash=hash_token(token)
        )
    except LookupError as exc:
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, str(exc), 404) from exc
    except PartnerCallError as exc:
        raise _unusable(exc) from exc
    return envelope(shown(state))


@router.delete("/{partner_id}")
async def unregister_partner(
    partner_id: PartnerIdPath, service: ServiceDep, local_only: bool = False
) -> Json:
    try:
        await service.unregister_with(partner_id, tell_partner=not local_only)
    except LookupError as exc:
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, str(exc), 404) from exc
    except PartnerCallError as exc:
        raise _unusable(exc) from exc
    return envelope({"partner_id": partner_id, "status": "unregistered"})
