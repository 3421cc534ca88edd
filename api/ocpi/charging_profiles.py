"""Received charging profiles: the ChargingProfiles module's Receiver
interface, we as CPO (mod_charging_profiles, docs/adr/0043).

``PUT /ocpi/cpo/2.2.1/chargingprofiles/{session_id}`` (a SetChargingProfile
body), ``GET ...?duration=&response_url=`` (the ActiveChargingProfile) and
``DELETE ...?response_url=`` (clear the profile): a registered partner with
an eMSP role asks about one of its sessions at our chargers. The shell
validates, gathers the session's facts as a STOP_SESSION does
(api/ocpi/received_commands.py) and records through the one write path what
``producers.charging_profiles.decide`` makes of them; the
ChargingProfileResponse is answered once Kafka acknowledged it. The
charger's outcome is POSTed to ``response_url`` later
(processors/charging_profile_results.py,
processors/charging_profile_callbacks.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import TypeAdapter, ValidationError

from api.deps import ContainerDep, CorrelationIdDep, NowDep
from api.errors import OcpiError, envelope
from api.ocpi.received_commands import CommandPorts, CommandPortsDep, emsp_caller, session_facts
from api.writes import JsonBodyOrNone, WritePathDep, body_of
from producers.charging_profiles import (
    SLICE,
    ProfileRequest,
    RedisRequestPace,
    decide,
    new_request_id,
)
from producers.received_commands import Caller, Facts
from producers.url_policy import UrlRefusedError, check_url
from schemas.events import Party
from schemas.ocpi.charging_profiles import ProfileAction, SetChargingProfile
from schemas.ocpi.commands import ResponseUrl
from schemas.ocpi.common import fold
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.types import to_json

receiver = APIRouter(
    prefix="/ocpi/cpo/2.2.1/chargingprofiles", tags=["ocpi: charging profiles (receiver)"]
)

CallerDep = Annotated[Caller, Depends(emsp_caller)]
SessionId = Annotated[str, Path(min_length=1, max_length=36)]


def _response_url(value: str) -> str:
    # The GET and DELETE carry it in the query; validated as the PUT body's is.
    try:
        return str(TypeAdapter(ResponseUrl).validate_python(value))
    except ValidationError as exc:
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS, f"response_url: {exc.errors()[0]['msg']}"
        ) from exc


async def _record(
    action: ProfileAction,
    session_id: str,
    response_url: str,
    c: ContainerDep,
    caller: Caller,
    ports: CommandPorts,
    write_path: WritePathDep,
    now: datetime,
    correlation_id: str,
    *,
    profile: SetChargingProfile | None = None,
    duration: int | None = None,
) -> dict[str, Any]:
    s = c.settings
    try:
        # The result goes to response_url later: a URL we would not call is
        # refused now, before anything is recorded (docs/adr/0039).
        await check_url(response_url, allow_private=s.url_policy_allow_private, what="response_url")
    except UrlRefusedError as exc:
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, str(exc)) from exc
    us = Party(country_code=fold(s.party_country_code), party_id=fold(s.party_id))
    session, entries = await session_facts(ports, write_path, us, session_id)
    ids = [cp.charge_point_id for cp in entries]
    request_id = new_request_id()
    facts = Facts(
        us=us,
        caller=caller,
        command_id=request_id,
        correlation_id=correlation_id,
        charge_points=tuple(entries),
        present=await ports.presence.present(ids),
        session=session,
    )
    pace = RedisRequestPace(c.redis, s.charging_profile_min_interval_s, s.topic_prefix)
    request = ProfileRequest(
        action=action,
        session_id=session_id,
        response_url=response_url,
        facts=facts,
        timeout_s=s.charging_profile_timeout_s,
        charging_profile=profile.charging_profile if profile is not None else None,
        duration=duration,
        too_often=await pace.too_often(session_id, action),
    )
    response = await write_path.write(SLICE, request_id, lambda state: decide(state, request, now))
    return envelope(to_json(response))


@receiver.put("/{session_id}", openapi_extra=body_of(SetChargingProfile))
async def set_charging_profile(
    session_id: SessionId,
    caller: CallerDep,
    c: ContainerDep,
    ports: CommandPortsDep,
    write_path: WritePathDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    body: JsonBodyOrNone,
) -> dict[str, Any]:
    # A bad body raises pydantic's ValidationError: 2001, nothing written.
    request = SetChargingProfile.model_validate(body)
    return await _record(
        ProfileAction.SET,
        session_id,
        str(request.response_url),
        c,
        caller,
        ports,
        write_path,
        now,
        correlation_id,
        profile=request,
    )


@receiver.get("/{session_id}")
async def get_active_charging_profile(
    session_id: SessionId,
    caller: CallerDep,
    c: ContainerDep,
    ports: CommandPortsDep,
    write_path: WritePathDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    duration: Annotated[int, Query(ge=1, le=2**31 - 1)],
    response_url: Annotated[str, Query(min_length=1, max_length=255)],
) -> dict[str, Any]:
    return await _record(
        ProfileAction.GET,
        session_id,
        _response_url(response_url),
        c,
        caller,
        ports,
        write_path,
        now,
        correlation_id,
        duration=duration,
    )


@receiver.delete("/{session_id}")
async def clear_charging_profile(
    session_id: SessionId,
    caller: CallerDep,
    c: ContainerDep,
    ports: CommandPortsDep,
    write_path: WritePathDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    response_url: Annotated[str, Query(min_length=1, max_length=255)],
) -> dict[str, Any]:
    return await _record(
        ProfileAction.CLEAR,
        session_id,
        _response_url(response_url),
        c,
        caller,
        ports,
        write_path,
        now,
        correlation_id,
    )
