"""Ops API of charging profiles (docs/adr/0043).

As eMSP, towards a registered partner CPO's ChargingProfiles Receiver (the
session id is the CPO's):

- ``PUT /ops/charging-profiles/sent/{partner_id}/{session_id}``: the body
  is an OCPI ChargingProfile; we PUT it as SetChargingProfile with our
  ``response_url``;
- ``DELETE /ops/charging-profiles/sent/{partner_id}/{session_id}``: clear it;
- ``POST /ops/charging-profiles/sent/{partner_id}/{session_id}/active?duration=``:
  ask for the ActiveChargingProfile.

Each answers ``{request_id, response_url, response}`` once the CPO answered
and ``ChargingProfileRequestSent`` is recorded; a CPO that cannot be used is
HTTP 502 / 3001 and nothing is recorded (as for sent commands,
api/ops/sent_commands.py).

- ``GET /ops/charging-profiles/sent/{request_id}``: the request, its
  ``status`` and the result the CPO POSTed (with the ActiveChargingProfile
  of a GET);
- ``GET /ops/charging-profiles/active/{country_code}/{party_id}/{session_id}``:
  the latest ActiveChargingProfile a CPO PUT to us for its session.
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Body, Path, Query, Request

from api.consistency import read_written
from api.deps import ContainerDep, NowDep
from api.errors import OcpiError, envelope
from api.ocpi.sent_commands import CommandIdPath
from api.ops.access import OPS_ACCESS
from api.ops.sent_commands import (
    CORE,
    Sending,
    SendingDep,
    read_or_fail,
    record_sent,
    send_to_receiver,
)
from api.writes import WritePathDep, checked
from producers.sent_charging_profiles import (
    ACTIVE_SLICE,
    SLICE,
    decide_sent,
    id_kind,
    outbound,
    plan_sent,
    response_url,
    status_of,
)
from producers.sent_commands import receiver_target
from projections.mongo.sent_charging_profiles import active_profiles, sent_profiles
from schemas.events import Party
from schemas.events.sessions import session_key
from schemas.ocpi.adapters import WIRES
from schemas.ocpi.charging_profiles import (
    ChargingProfile,
    ChargingProfileResponse,
    ProfileAction,
)
from schemas.ocpi.common import fold
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.types import to_json
from schemas.ocpi.versions import ModuleId
from schemas.ocpi.wire import CORE_VERSION

log = structlog.get_logger(__name__)

router = APIRouter(
    prefix="/ops/charging-profiles",
    tags=["ops: charging profiles (as eMSP)"],
    dependencies=[OPS_ACCESS],
)

PartnerId = Annotated[str, Path(min_length=1, max_length=100)]
SessionId = Annotated[str, Path(min_length=1, max_length=36)]


async def _send(
    action: ProfileAction,
    partner_id: str,
    session_id: str,
    sending: Sending,
    *,
    charging_profile: dict[str, Any] | None = None,
    duration: int | None = None,
) -> dict[str, Any]:
    c, ids, write_path, now = sending.c, sending.ids, sending.write_path, sending.now
    correlation_id = sending.correlation_id
    s = c.settings
    us = Party(country_code=fold(s.party_country_code), party_id=fold(s.party_id))
    partner = await c.partners.get(partner_id)
    # Refused (409) for a partner whose version we do not speak the module in.
    target = receiver_target(partner_id, partner, ModuleId.CHARGING_PROFILES)
    # Its version's transport and response_url (2.3.0's objects are 2.2.1's).
    edge = WIRES.get(partner.version or CORE_VERSION, CORE) if partner else CORE
    request_id = ids.new(partner_id, id_kind(action))
    url = response_url(s.base_url, action, request_id, edge.version)
    method, to, body = outbound(
        action, target, session_id, url, charging_profile=charging_profile, duration=duration
    )
    bound = log.bind(partner_id=partner_id, request_id=request_id, action=action.value)
    answer = await send_to_receiver(
        c, sending.channel, target, method, to, body, correlation_id, bound, edge
    )
    response = read_or_fail(answer, ChargingProfileResponse, bound)
    event = plan_sent(
        request_id=request_id,
        action=action,
        target=target,
        session_id=session_id,
        url=url,
        response=response,
        us=us,
        now=now,
        correlation_id=correlation_id,
        charging_profile=charging_profile,
        duration=duration,
    )
    await record_sent(
        write_path,
        SLICE,
        request_id,
        lambda state: decide_sent(state, event),
        bound,
        f"charging profile request {request_id} was sent "
        f"(the partner answered {response.result.value})",
    )
    bound.info("charging_profile_request_sent", response=response.result.value)
    return envelope({"request_id": request_id, "response_url": url, "response": to_json(response)})


@router.put("/sent/{partner_id}/{session_id}")
async def send_charging_profile(
    partner_id: PartnerId,
    session_id: SessionId,
    sending: SendingDep,
    http: Request,
    body: Annotated[Any, Body(description="An OCPI ChargingProfile.")] = None,
) -> dict[str, Any]:
    checked(http, body)
    profile = to_json(ChargingProfile.model_validate(body))  # 2001 when it is not one
    return await _send(
        ProfileAction.SET, partner_id, session_id, sending, charging_profile=profile,
    )  # fmt: skip


@router.delete("/sent/{partner_id}/{session_id}")
async def clear_charging_profile(
    partner_id: PartnerId,
    session_id: SessionId,
    sending: SendingDep,
) -> dict[str, Any]:
    return await _send(
        ProfileAction.CLEAR, partner_id, session_id, sending,
    )  # fmt: skip


@router.post("/sent/{partner_id}/{session_id}/active")
async def ask_active_charging_profile(
    partner_id: PartnerId,
    session_id: SessionId,
    sending: SendingDep,
    duration: Annotated[int, Query(ge=1, le=2**31 - 1)],
) -> dict[str, Any]:
    return await _send(
        ProfileAction.GET, partner_id, session_id, sending, duration=duration,
    )  # fmt: skip


@router.get("/sent/{request_id}")
async def get_sent_charging_profile(
    request_id: CommandIdPath, c: ContainerDep, write_path: WritePathDep, now: NowDep
) -> dict[str, Any]:
    view = sent_profiles(c.mongo[c.settings.mongo_db])
    wait_s = c.settings.read_own_writes_timeout_s
    sent = await read_written(view, write_path, SLICE, request_id, timeout_s=wait_s, what="request")
    if sent is None:
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS,
            f"we sent no charging profile request {request_id!r}",
            404,
        )
    shown = sent.model_dump(mode="json", exclude_none=True)
    return envelope({"status": status_of(sent, now), **shown})


@router.get("/active/{country_code}/{party_id}/{session_id}")
async def get_active_charging_profile(
    country_code: Annotated[str, Path(pattern=r"^[A-Za-z]{2}$")],
    party_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9]{3}$")],
    session_id: SessionId,
    c: ContainerDep,
    write_path: WritePathDep,
) -> dict[str, Any]:
    view = active_profiles(c.mongo[c.settings.mongo_db])
    key = session_key(country_code, party_id, session_id)
    wait_s = c.settings.read_own_writes_timeout_s
    active = await read_written(
        view, write_path, ACTIVE_SLICE, key, timeout_s=wait_s, what="active charging profile"
    )
    if active is None:
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS, f"no active charging profile for session {key}", 404
        )
    return envelope(active.model_dump(mode="json"))
