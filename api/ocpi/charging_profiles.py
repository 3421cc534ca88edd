"""Received charging profiles: the ChargingProfiles module's Receiver
interface, we as CPO (mod_charging_profiles, docs/adr/0043).

``PUT /ocpi/cpo/{version}/chargingprofiles/{session_id}`` (2.2.1 and 2.3.0,
whose objects are the same: mod_charging_profiles changed only in wording) (a SetChargingProfile
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

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import TypeAdapter, ValidationError

from api.errors import OcpiError, envelope
from api.ocpi.paths import VersionPath
from api.ocpi.received_commands import (
    Asked,
    AskedDep,
    callable_response_url,
    session_request_facts,
)
from api.writes import JsonBodyOrNone, body_of
from producers.charging_profiles import (
    SLICE,
    ProfileRequest,
    RedisRequestPace,
    decide,
    new_request_id,
)
from schemas.ocpi.charging_profiles import ProfileAction, SetChargingProfile
from schemas.ocpi.commands import ResponseUrl
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.types import to_json

receiver = APIRouter(
    prefix="/ocpi/cpo/{version}/chargingprofiles", tags=["ocpi: charging profiles (receiver)"]
)

SessionId = Annotated[str, Path(min_length=1, max_length=36)]
QueryUrl = Annotated[str, Query(min_length=1, max_length=255)]


def _query_url(value: str) -> str:
    # The GET and DELETE carry it in the query; validated as the PUT body's is.
    try:
        return str(TypeAdapter(ResponseUrl).validate_python(value))
    except ValidationError as exc:
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS, f"response_url: {exc.errors()[0]['msg']}"
        ) from exc


async def _record(
    asked: Asked,
    action: ProfileAction,
    session_id: str,
    response_url: str,
    *,
    profile: SetChargingProfile | None = None,
    duration: int | None = None,
) -> dict[str, Any]:
    c = asked.c
    s = c.settings
    await callable_response_url(response_url, c)
    request_id = new_request_id()
    facts = await session_request_facts(
        asked.ports,
        asked.write_path,
        us=asked.us,
        caller=asked.caller,
        request_id=request_id,
        correlation_id=asked.correlation_id,
        session_id=session_id,
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
    now = asked.now
    response = await asked.write_path.write(
        SLICE, request_id, lambda state: decide(state, request, now)
    )
    return envelope(to_json(response))


@receiver.put("/{session_id}", openapi_extra=body_of(SetChargingProfile))
async def set_charging_profile(
    version: VersionPath, session_id: SessionId, asked: AskedDep, body: JsonBodyOrNone
) -> dict[str, Any]:
    # A bad body raises pydantic's ValidationError: 2001, nothing written.
    request = SetChargingProfile.model_validate(body)
    url = str(request.response_url)
    return await _record(asked, ProfileAction.SET, session_id, url, profile=request)


@receiver.get("/{session_id}")
async def get_active_charging_profile(
    version: VersionPath,
    session_id: SessionId,
    asked: AskedDep,
    duration: Annotated[int, Query(ge=1, le=2**31 - 1)],
    response_url: QueryUrl,
) -> dict[str, Any]:
    url = _query_url(response_url)
    return await _record(asked, ProfileAction.GET, session_id, url, duration=duration)


@receiver.delete("/{session_id}")
async def clear_charging_profile(
    version: VersionPath, session_id: SessionId, asked: AskedDep, response_url: QueryUrl
) -> dict[str, Any]:
    return await _record(asked, ProfileAction.CLEAR, session_id, _query_url(response_url))
