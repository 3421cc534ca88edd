"""Sent charging profiles: the ChargingProfiles module's Sender interface,
we as eMSP (mod_charging_profiles, docs/adr/0043).

- ``POST /ocpi/emsp/{version}/chargingprofiles/{action}/{request_id}`` is the
  ``response_url`` of every request we send: the CPO POSTs the charger's
  outcome (ChargingProfileResult, ActiveChargingProfileResult or
  ClearProfileResult, by ``action``). Only the partner the request went to
  may: the id carries a MAC binding it to that partner and action
  (``CommandIds``, docs/adr/0019); anything else is 2003 and writes nothing.
  The first result stands; a repeat answers 1000 and records nothing.
- ``PUT /ocpi/emsp/{version}/chargingprofiles/{session_id}``: a CPO partner
  tells us the ActiveChargingProfile of one of its sessions changed.

``{version}``: 2.2.1 or 2.3.0, the CPO's (its objects are the same in both).
Both are recorded through the one write path and answered once Kafka
acknowledged them.
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Path

from api.deps import CorrelationIdDep, NowDep
from api.errors import envelope
from api.ocpi.paths import VersionPath
from api.ocpi.received_commands import one_of
from api.ocpi.sent_commands import CommandIdPath, ResultCallDep
from api.routing import RoutedCallerDep
from api.writes import JsonBodyOrNone, WritePathDep, body_of
from producers.sent_charging_profiles import (
    ACTIVE_SLICE,
    SLICE,
    decide_active,
    decide_result,
    id_kind,
    plan_active,
    plan_result,
)
from schemas.ocpi.charging_profiles import (
    ActiveChargingProfile,
    ActiveChargingProfileResult,
    ChargingProfileResult,
    ClearProfileResult,
    ProfileAction,
)

log = structlog.get_logger(__name__)

sender = APIRouter(
    prefix="/ocpi/emsp/{version}/chargingprofiles", tags=["ocpi: charging profiles (sender)"]
)


@sender.post(
    "/{action}/{request_id}",
    openapi_extra=one_of(ChargingProfileResult, ActiveChargingProfileResult, ClearProfileResult),
)
async def receive_charging_profile_result(
    version: VersionPath,
    action: ProfileAction,
    request_id: CommandIdPath,
    call: ResultCallDep,
    body: JsonBodyOrNone,
) -> dict[str, Any]:
    call.require_genuine(request_id, id_kind(action), f"{action.value} charging profile request")
    # A body that is not the result object of ``action``: 2001, nothing written.
    event = plan_result(
        request_id=request_id,
        action=action,
        partner_id=call.partner_id,
        sender=call.caller.party,
        body=body,
        now=call.now,
        correlation_id=call.correlation_id,
    )
    first = await call.write_path.write(
        SLICE, request_id, lambda state: decide_result(state, event)
    )
    log.info(
        "charging_profile_result_received" if first is None else "charging_profile_result_repeated",
        partner_id=call.partner_id,
        request_id=request_id,
        result=event.payload.result.value,
    )
    return envelope()


@sender.put("/{session_id}", openapi_extra=body_of(ActiveChargingProfile))
async def receive_active_charging_profile(
    version: VersionPath,
    session_id: Annotated[str, Path(min_length=1, max_length=36)],
    caller: RoutedCallerDep,
    write_path: WritePathDep,
    now: NowDep,
    correlation_id: CorrelationIdDep,
    body: JsonBodyOrNone,
) -> dict[str, Any]:
    # The session is the calling CPO's own (its party); a bad body is 2001.
    event = plan_active(
        partner_id=caller.partner.partner_id,
        sender=caller.party,
        session_id=session_id,
        body=body,
        now=now,
        correlation_id=correlation_id,
    )
    await write_path.write(
        ACTIVE_SLICE, event.aggregate_key, lambda state: decide_active(state, event)
    )
    return envelope()
