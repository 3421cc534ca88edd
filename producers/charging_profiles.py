"""Received charging profiles: the ChargingProfiles slice as CPO
(mod_charging_profiles, our Receiver interface). A partner's Sender sets
(PUT), reads (GET) or clears (DELETE) the charging profile of one of our
sessions; the charger's outcome goes to the request's ``response_url``.

It is judged as a STOP_SESSION is (producers/received_commands.py): the
session must be ours and active, its token the caller's, and the session's
charger registered and connected; the facts are gathered the same way and
``session_target`` names the charger. On top: a request for the same
session and action within ``min_interval_s`` of the previous one is
TOO_OFTEN (the spec lets a CPO bound the rate, to spare the charger's link).

``decide`` records ``ChargingProfileRequestAccepted`` (with the deadline,
as for commands: docs/adr/0017) or ``ChargingProfileRequestDeclined`` and
answers the ChargingProfileResponse. Nothing later decision consults a
request, so the write path holds none (``SLICE``).

Pure: no I/O; the clock and the ids are passed in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import redis.asyncio as aioredis

from producers.received_commands import DeclinedError, Facts, session_target
from producers.write_path import Decision, Slice
from schemas.events import ChargingProfileRequestAccepted, ChargingProfileRequestDeclined
from schemas.events.charging_profiles import (
    ChargingProfileRequestAcceptedPayload,
    ChargingProfileRequestDeclinedPayload,
)
from schemas.events.envelope import envelope_of
from schemas.ocpi.charging_profiles import (
    ActiveChargingProfile,
    ChargingProfile,
    ChargingProfileResponse,
    ChargingProfileResponseType,
    ChargingProfileResultType,
    ProfileAction,
)
from schemas.ocpi.common import fold
from schemas.ocpi.types import to_json
from schemas.topics import CHARGING_PROFILES


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class ProfileRequest:
    """One request at our Receiver, validated, with its facts
    (``Facts.command_id`` is the request id) and what the shell found."""

    action: ProfileAction
    session_id: str
    response_url: str
    facts: Facts
    timeout_s: int
    charging_profile: ChargingProfile | None = None  # SET
    duration: int | None = None  # GET
    too_often: bool = False


Planned = ChargingProfileRequestAccepted | ChargingProfileRequestDeclined


def plan(request: ProfileRequest, now: datetime) -> Planned:
    facts = request.facts
    meta = envelope_of(facts.command_id, now, facts.caller.party, facts.correlation_id)
    common: dict[str, Any] = {
        "request_id": facts.command_id,
        "action": request.action,
        "session_id": request.session_id,
        "sender": facts.caller.party,
        "partner_id": facts.caller.partner_id,
        "at": now,
    }
    try:
        target = session_target(facts, request.session_id)
    except DeclinedError as exc:
        # The three words are the same in both modules.
        result = ChargingProfileResponseType(exc.result.value)
        return ChargingProfileRequestDeclined(
            **meta,
            payload=ChargingProfileRequestDeclinedPayload(
                **common, result=result, message=exc.message
            ),
        )
    if request.too_often:
        return ChargingProfileRequestDeclined(
            **meta,
            payload=ChargingProfileRequestDeclinedPayload(
                **common,
                result=ChargingProfileResponseType.TOO_OFTEN,
                message="the previous request for this session came too recently",
            ),
        )
    profile = request.charging_profile
    return ChargingProfileRequestAccepted(
        **meta,
        payload=ChargingProfileRequestAcceptedPayload(
            **common,
            response_url=request.response_url,
            charging_profile=to_json(profile) if profile is not None else None,
            duration=request.duration,
            target=target,
            timeout_s=request.timeout_s,
            deadline=now + timedelta(seconds=request.timeout_s),
        ),
    )


def response_of(event: Planned) -> ChargingProfileResponse:
    if isinstance(event, ChargingProfileRequestDeclined):
        return ChargingProfileResponse(result=event.payload.result, timeout=0)
    return ChargingProfileResponse(
        result=ChargingProfileResponseType.ACCEPTED, timeout=event.payload.timeout_s
    )


def decide(
    state: None, request: ProfileRequest, now: datetime
) -> Decision[ChargingProfileResponse]:
    """Record the request's acceptance or refusal and answer it. ``state``
    is the request's own, always empty: its id is new."""
    planned = plan(request, now)
    return Decision([planned], response_of(planned))


def _nothing_held(state: None, event: object) -> None:
    # A request is decided once, on other aggregates (the session, the
    # charge points); no later decision consults it.
    return None


SLICE: Slice[Any] = Slice(
    "received_charging_profiles",
    CHARGING_PROFILES,
    _nothing_held,
    lambda state: b"",
    lambda raw: None,
)


# --------------------------------------------------------------------------- #
# The rate bound (TOO_OFTEN): a port and its Redis adapter
# --------------------------------------------------------------------------- #


class RequestPace(Protocol):
    async def too_often(self, session_id: str, action: ProfileAction) -> bool:
        """Whether a request of this session and action came within the
        interval; counts this one either way."""
        ...


@dataclass
class RedisRequestPace:
    """``SET NX PX``: the first request of an interval sets the key, any
    other in it finds it set. An interval of 0 bounds nothing."""

    redis: aioredis.Redis
    min_interval_s: float
    prefix: str = ""

    async def too_often(self, session_id: str, action: ProfileAction) -> bool:
        if self.min_interval_s <= 0:
            return False
        key = f"{self.prefix}ocpi-hub:charging-profiles:pace:{fold(session_id)}:{action.value}"
        first = await self.redis.set(key, b"1", nx=True, px=int(self.min_interval_s * 1000))
        return not first


# --------------------------------------------------------------------------- #
# OCPI <-> OCPP 1.6 (the gateway's side; pure)
# --------------------------------------------------------------------------- #

# OCPP 1.6 limits carry at most one decimal (ChargingSchedulePeriod.limit,
# minChargingRate), as OCPI's do; more is rounded, not refused, since the
# eMSP's intent is clear.
_OCPP_DECIMALS = 1


def ocpp_profile_id(transaction_id: int) -> int:
    """The OCPP chargingProfileId of the profile we set on a transaction:
    one per transaction (our transaction ids are unique across chargers), so
    a second PUT replaces the first and a DELETE clears exactly it."""
    return transaction_id


def to_ocpp_tx_profile(
    profile: dict[str, Any], transaction_id: int, stack_level: int
) -> dict[str, Any]:
    """An OCPI ChargingProfile as the OCPP 1.6 TxProfile of a transaction
    (snake_case keys: the ``ocpp`` library camel-cases them on the wire).
    With ``start_date_time`` the schedule is Absolute from then; without,
    Relative to the start of charging, as OCPI defines it."""
    p = ChargingProfile.model_validate(profile)
    schedule: dict[str, Any] = {
        "charging_rate_unit": p.charging_rate_unit.value,  # W and A in both
        "charging_schedule_period": [
            {"start_period": period.start_period, "limit": round(period.limit, _OCPP_DECIMALS)}
            for period in p.charging_profile_period or ()
        ],
    }
    if p.duration is not None:
        schedule["duration"] = p.duration
    if p.min_charging_rate is not None:
        schedule["min_charging_rate"] = round(p.min_charging_rate, _OCPP_DECIMALS)
    if p.start_date_time is not None:
        schedule["start_schedule"] = _ocpp_time(p.start_date_time)
    return {
        "charging_profile_id": ocpp_profile_id(transaction_id),
        "transaction_id": transaction_id,
        "stack_level": stack_level,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Absolute" if p.start_date_time is not None else "Relative",
        "charging_schedule": schedule,
    }


def _ocpp_time(at: datetime) -> str:
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def active_profile_of(
    schedule_start: str | None, schedule: dict[str, Any] | None, now: datetime
) -> dict[str, Any] | None:
    """The OCPI ActiveChargingProfile of an OCPP 1.6 composite schedule (the
    answer to GetCompositeSchedule, snake_case); None when the charger gave
    no schedule. Its start is the schedule's, else when we asked."""
    if not schedule:
        return None
    periods = [
        {"start_period": int(period["start_period"]), "limit": float(period["limit"])}
        for period in schedule.get("charging_schedule_period") or ()
    ]
    profile: dict[str, Any] = {
        "charging_rate_unit": str(schedule["charging_rate_unit"]),
        "charging_profile_period": periods,
    }
    if schedule.get("duration") is not None:
        profile["duration"] = int(schedule["duration"])
    if schedule.get("min_charging_rate") is not None:
        profile["min_charging_rate"] = float(schedule["min_charging_rate"])
    start = schedule_start or schedule.get("start_schedule")
    active = {
        "start_date_time": start if start else _ocpp_time(now),
        "charging_profile": profile,
    }
    # Checked here, at the edge, so a charger's odd schedule fails its own
    # request rather than the view or the eMSP.
    return to_json(ActiveChargingProfile.model_validate(active))


# The charger's word -> OCPI's result (mod_charging_profiles
# ChargingProfileResultType: only ACCEPTED, REJECTED, UNKNOWN).
_RESULTS = {
    "Accepted": ChargingProfileResultType.ACCEPTED,
    "Rejected": ChargingProfileResultType.REJECTED,
    "NotSupported": ChargingProfileResultType.REJECTED,
    "Unknown": ChargingProfileResultType.UNKNOWN,
}


def result_of(charger_status: str | None) -> ChargingProfileResultType:
    """What the charger's status (or CallError, None) means in OCPI: an
    error or an unknown word is REJECTED (it did not take the request)."""
    return _RESULTS.get(charger_status or "", ChargingProfileResultType.REJECTED)
