"""Sent charging profiles: the ChargingProfiles slice as eMSP
(mod_charging_profiles, our Sender interface): we set, read or clear the
charging profile of a session at a partner CPO, receive the charger's
outcome at our ``response_url`` and the CPO's ActiveChargingProfile updates
at our endpoint (docs/adr/0043).

Built like the sent commands (producers/sent_commands.py, docs/adr/0019)
and on their parts: request ids carry a MAC binding them to the partner
(``CommandIds`` with the kind ``chargingprofiles:<action>``), so a result that
overtakes our record of the request is told genuine without reading
anything; the partner's Receiver is found and addressed as for commands
(``receiver_target``), its immediate answer read with ``read_answer``; a
send that fails records nothing; the first result stands.

Two slices: ``SLICE`` (one request, keyed by request id) and
``ACTIVE_SLICE`` (the latest ActiveChargingProfile a CPO PUT for one of its
sessions, keyed by the session key). Pure.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict

from producers.sent_commands import NO_RESULT_IN_TIME, PENDING, CommandTarget
from producers.write_path import Decision, RefusedError, Slice
from schemas.events import (
    ActiveChargingProfileReceived,
    ChargingProfileRequestSent,
    ChargingProfileResultReceived,
    Party,
)
from schemas.events.charging_profiles import (
    ActiveChargingProfileReceivedPayload,
    ChargingProfileRequestSentPayload,
    ChargingProfileResultReceivedPayload,
)
from schemas.events.envelope import envelope_of
from schemas.events.sessions import session_key
from schemas.ocpi.charging_profiles import (
    ActiveChargingProfile,
    ActiveChargingProfileResult,
    ChargingProfileResponse,
    ChargingProfileResponseType,
    ChargingProfileResult,
    ChargingProfileResultType,
    ClearProfileResult,
    ProfileAction,
)
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.types import to_json
from schemas.ocpi.wire import CORE_VERSION
from schemas.topics import CHARGING_PROFILES


def id_kind(action: ProfileAction) -> str:
    """What a request id is bound to besides the partner (``CommandIds``):
    the module and the action, so a result says which object it must be."""
    return f"chargingprofiles:{action.value}"


_METHODS = {ProfileAction.SET: "PUT", ProfileAction.GET: "GET", ProfileAction.CLEAR: "DELETE"}


def response_url(
    base_url: str, action: ProfileAction, request_id: str, version: str = CORE_VERSION
) -> str:
    """Our Sender interface for this one request (a unique id in the URL
    tells simultaneous requests apart, as the module advises; the action
    says which result object to expect), in the OCPI version of the
    partner it goes to (its result comes to that version's route)."""
    base = base_url.rstrip("/")
    return f"{base}/ocpi/emsp/{version}/chargingprofiles/{action.value}/{request_id}"


def outbound(
    action: ProfileAction,
    target: CommandTarget,
    session_id: str,
    url: str,
    *,
    charging_profile: dict[str, Any] | None = None,
    duration: int | None = None,
) -> tuple[str, str, dict[str, Any] | None]:
    """Method, URL and body of the request to the CPO's Receiver: PUT with a
    SetChargingProfile, GET and DELETE with their parameters in the query."""
    base = f"{target.url.rstrip('/')}/{session_id}"
    if action is ProfileAction.SET:
        if charging_profile is None:
            raise RefusedError(OcpiStatus.INVALID_PARAMETERS, "charging_profile is required")
        return "PUT", base, {"charging_profile": charging_profile, "response_url": url}
    if action is ProfileAction.GET:
        if duration is None:
            raise RefusedError(OcpiStatus.INVALID_PARAMETERS, "duration is required")
        return "GET", _with_query(base, duration=str(duration), response_url=url), None
    return _METHODS[action], _with_query(base, response_url=url), None


def _with_query(url: str, **params: str) -> str:
    return f"{url}?{urlencode(params)}"


def plan_sent(
    *,
    request_id: str,
    action: ProfileAction,
    target: CommandTarget,
    session_id: str,
    url: str,
    response: ChargingProfileResponse,
    us: Party,
    now: datetime,
    correlation_id: str,
    charging_profile: dict[str, Any] | None = None,
    duration: int | None = None,
) -> ChargingProfileRequestSent:
    return ChargingProfileRequestSent(
        **envelope_of(request_id, now, us, correlation_id),
        payload=ChargingProfileRequestSentPayload(
            request_id=request_id,
            action=action,
            partner_id=target.partner_id,
            receiver=target.to,
            session_id=session_id,
            response_url=url,
            charging_profile=charging_profile,
            duration=duration,
            response=response.result,
            timeout_s=response.timeout,
            at=now,
        ),
    )


# What the CPO POSTs to our response_url, by what we asked.
_RESULT_MODELS: dict[
    ProfileAction,
    type[ChargingProfileResult] | type[ActiveChargingProfileResult] | type[ClearProfileResult],
] = {
    ProfileAction.SET: ChargingProfileResult,
    ProfileAction.GET: ActiveChargingProfileResult,
    ProfileAction.CLEAR: ClearProfileResult,
}

_RESULT_NS = uuid.UUID("9a3c7e21-64b0-4f6d-8d2e-0c5b1f9e7a44")


def plan_result(
    *,
    request_id: str,
    action: ProfileAction,
    partner_id: str,
    sender: Party,
    body: Any,
    now: datetime,
    correlation_id: str,
) -> ChargingProfileResultReceived:
    """The CPO's result as recorded; which object it is follows from what
    we asked (``action``). A body that is not that object raises pydantic's
    ValidationError (2001). One event id per request, however often sent."""
    model = _RESULT_MODELS[action]
    result = model.model_validate(body)
    profile = getattr(result, "profile", None)
    return ChargingProfileResultReceived(
        **envelope_of(
            request_id, now, sender, correlation_id, event_id=uuid.uuid5(_RESULT_NS, request_id)
        ),
        payload=ChargingProfileResultReceivedPayload(
            request_id=request_id,
            action=action,
            partner_id=partner_id,
            result=result.result,
            active_profile=to_json(profile) if profile is not None else None,
            at=now,
        ),
    )


class SentProfileState(BaseModel):
    """One request we sent, as its events say (a result may come first)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str
    partner_id: str
    action: ProfileAction | None = None
    receiver: Party | None = None
    session_id: str | None = None
    charging_profile: dict[str, Any] | None = None
    duration: int | None = None
    response: ChargingProfileResponseType | None = None
    timeout_s: int | None = None
    sent_at: datetime | None = None
    result: ChargingProfileResultType | None = None
    active_profile: dict[str, Any] | None = None
    result_at: datetime | None = None


def evolve(state: SentProfileState | None, event: object) -> SentProfileState | None:
    if isinstance(event, ChargingProfileRequestSent):
        p = event.payload
        base = state or SentProfileState(request_id=p.request_id, partner_id=p.partner_id)
        fields = p.model_dump(exclude={"request_id", "response_url", "at"})
        return base.model_copy(update={**fields, "sent_at": p.at})
    if isinstance(event, ChargingProfileResultReceived):
        r = event.payload
        if state is not None and state.result is not None:
            return state  # the first result stands
        base = state or SentProfileState(request_id=r.request_id, partner_id=r.partner_id)
        return base.model_copy(
            update={
                "action": base.action or r.action,
                "result": r.result,
                "active_profile": r.active_profile,
                "result_at": r.at,
            }
        )
    return state  # the topic's other events are not this slice's


SLICE: Slice[SentProfileState] = Slice(
    "sent_charging_profiles",
    CHARGING_PROFILES,
    evolve,
    lambda state: state.model_dump_json().encode(),
    SentProfileState.model_validate_json,
)


def decide_sent(state: SentProfileState | None, sent: ChargingProfileRequestSent) -> Decision[None]:
    return Decision([sent], None)


def decide_result(
    state: SentProfileState | None, received: ChargingProfileResultReceived
) -> Decision[ChargingProfileResultType | None]:
    """The first result stands: a repeat records nothing."""
    if state is not None and state.result is not None:
        return Decision([], state.result)
    return Decision([received], None)


def status_of(state: SentProfileState, now: datetime) -> str:
    """As for sent commands: the CPO's refusal, else the result, else
    PENDING until its announced timeout and NO_RESULT_IN_TIME after."""
    if state.response is not None and state.response is not ChargingProfileResponseType.ACCEPTED:
        return state.response.value
    if state.result is not None:
        return state.result.value
    if state.sent_at is None or state.timeout_s is None:
        return PENDING
    if now < state.sent_at + timedelta(seconds=state.timeout_s):
        return PENDING
    return NO_RESULT_IN_TIME


# --------------------------------------------------------------------------- #
# ActiveChargingProfile updates a CPO PUTs to us
# --------------------------------------------------------------------------- #


class ActiveProfileState(BaseModel):
    """The latest ActiveChargingProfile a CPO gave us for one of its
    sessions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    partner_id: str
    country_code: str
    party_id: str
    session_id: str
    active_profile: dict[str, Any]
    received_at: datetime
    updates: int = 1


def plan_active(
    *,
    partner_id: str,
    sender: Party,
    session_id: str,
    body: Any,
    now: datetime,
    correlation_id: str,
) -> ActiveChargingProfileReceived:
    """A body that is not an ActiveChargingProfile raises ValidationError."""
    profile = ActiveChargingProfile.model_validate(body)
    key = session_key(sender.country_code, sender.party_id, session_id)
    return ActiveChargingProfileReceived(
        **envelope_of(key, now, sender, correlation_id),
        payload=ActiveChargingProfileReceivedPayload(
            partner_id=partner_id,
            sender=sender,
            session_id=session_id,
            active_profile=to_json(profile),
            at=now,
        ),
    )


def evolve_active(state: ActiveProfileState | None, event: object) -> ActiveProfileState | None:
    if not isinstance(event, ActiveChargingProfileReceived):
        return state
    p = event.payload
    return ActiveProfileState(
        key=event.aggregate_key,
        partner_id=p.partner_id,
        country_code=p.sender.country_code,
        party_id=p.sender.party_id,
        session_id=p.session_id,
        active_profile=p.active_profile,
        received_at=p.at,
        updates=(state.updates + 1) if state else 1,
    )


ACTIVE_SLICE: Slice[ActiveProfileState] = Slice(
    "partner_active_charging_profiles",
    CHARGING_PROFILES,
    evolve_active,
    lambda state: state.model_dump_json().encode(),
    ActiveProfileState.model_validate_json,
)


def decide_active(
    state: ActiveProfileState | None, received: ActiveChargingProfileReceived
) -> Decision[None]:
    """Every update is kept: the CPO sends one when the schedule changed."""
    return Decision([received], None)
