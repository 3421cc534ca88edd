"""Charging profile events (topic ``ocpi.charging-profiles.v1``), keyed by
our request id (one per request, either role).

The shape follows the commands' (schemas/events/commands.py), for the
same reason: one request, an immediate answer, one result later.

- **received**, we as CPO (a partner's Sender sets, reads or clears the
  profile of one of our sessions): the API records
  ``ChargingProfileRequestAccepted`` (its ``deadline`` armed then) or
  ``ChargingProfileRequestDeclined``; the OCPP gateway holding the charger
  records ``ChargerProfileAnswered``; a timer records
  ``ChargingProfileDeadlinePassed``; the results processor decides the one
  outcome, ``ChargingProfileResultDecided``, which the callback sender POSTs
  to ``response_url``. When the charger accepted a profile we set, the
  gateway asks it for its composite schedule and records
  ``ActiveChargingProfileChanged``, which the push process PUTs to the
  Sender.
- **sent**, we as eMSP: ``ChargingProfileRequestSent`` (with the CPO's
  ChargingProfileResponse), ``ChargingProfileResultReceived`` (what the CPO
  POSTed to our ``response_url``) and ``ActiveChargingProfileReceived``
  (what the CPO PUT to our Sender interface; keyed by the CPO's session).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.events.commands import ChargePointId, Ci36, CommandTarget
from schemas.events.envelope import EventMeta, Party
from schemas.ocpi.charging_profiles import (
    ChargingProfileResponseType,
    ChargingProfileResultType,
    ProfileAction,
)

RequestId = Annotated[str, Field(min_length=1, max_length=64)]
Duration = Annotated[int, Field(ge=0)]


class ChargingProfileRequestAcceptedPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: RequestId
    action: ProfileAction
    session_id: Ci36  # ours
    sender: Party  # the party that asked
    partner_id: str
    response_url: str
    # SET: the OCPI ChargingProfile as received (JSON form); GET: the
    # duration asked for.
    charging_profile: dict[str, Any] | None = None
    duration: Duration | None = None
    target: CommandTarget
    timeout_s: Annotated[int, Field(ge=1)]
    deadline: AwareDatetime
    at: AwareDatetime


class ChargingProfileRequestAccepted(EventMeta):
    """We answered ACCEPTED: the request goes to the charger; its result is
    due by ``deadline``."""

    event_type: Literal["ChargingProfileRequestAccepted"] = "ChargingProfileRequestAccepted"
    schema_version: Literal[1] = 1
    payload: ChargingProfileRequestAcceptedPayload


class ChargingProfileRequestDeclinedPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: RequestId
    action: ProfileAction
    session_id: Ci36
    sender: Party
    partner_id: str
    result: Literal[
        ChargingProfileResponseType.NOT_SUPPORTED,
        ChargingProfileResponseType.REJECTED,
        ChargingProfileResponseType.TOO_OFTEN,
        ChargingProfileResponseType.UNKNOWN_SESSION,
    ]
    message: Annotated[str, Field(max_length=512)] | None = None
    at: AwareDatetime


class ChargingProfileRequestDeclined(EventMeta):
    """We answered something else than ACCEPTED: nothing goes to a charger
    and no result follows."""

    event_type: Literal["ChargingProfileRequestDeclined"] = "ChargingProfileRequestDeclined"
    schema_version: Literal[1] = 1
    payload: ChargingProfileRequestDeclinedPayload


class ChargerProfileAnsweredPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: RequestId
    charge_point_id: ChargePointId
    result: ChargingProfileResultType
    # The charger's own word ("Accepted", "NotSupported", "Unknown", a
    # CallError code), for operators.
    charger_status: Annotated[str, Field(max_length=40)] | None = None
    # GET: the OCPI ActiveChargingProfile made of the composite schedule.
    active_profile: dict[str, Any] | None = None
    at: AwareDatetime


class ChargerProfileAnswered(EventMeta):
    """The charger (through the gateway holding its connection) answered."""

    event_type: Literal["ChargerProfileAnswered"] = "ChargerProfileAnswered"
    schema_version: Literal[1] = 1
    payload: ChargerProfileAnsweredPayload


class ChargingProfileDeadlinePassedPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: RequestId
    deadline: AwareDatetime
    at: AwareDatetime


class ChargingProfileDeadlinePassed(EventMeta):
    """The request's deadline passed (stated by the timer; may be stated
    more than once, and after the charger answered: ignored then)."""

    event_type: Literal["ChargingProfileDeadlinePassed"] = "ChargingProfileDeadlinePassed"
    schema_version: Literal[1] = 1
    payload: ChargingProfileDeadlinePassedPayload


class ChargingProfileResultDecidedPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: RequestId
    action: ProfileAction
    session_id: Ci36
    partner_id: str
    response_url: str
    result: ChargingProfileResultType
    # GET, when ACCEPTED: the OCPI ActiveChargingProfile.
    active_profile: dict[str, Any] | None = None
    decided_by: Literal["charger", "deadline"]
    at: AwareDatetime


class ChargingProfileResultDecided(EventMeta):
    """The one outcome of an accepted request, to be POSTed to its
    ``response_url``; its event id is derived from the accepted event's."""

    event_type: Literal["ChargingProfileResultDecided"] = "ChargingProfileResultDecided"
    schema_version: Literal[1] = 1
    payload: ChargingProfileResultDecidedPayload


class ActiveChargingProfileChangedPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: RequestId  # the SET that changed it
    session_id: Ci36
    partner_id: str  # the Sender that set a profile on the session
    active_profile: dict[str, Any]  # OCPI ActiveChargingProfile
    at: AwareDatetime


class ActiveChargingProfileChanged(EventMeta):
    """As CPO: the charger's schedule for one of our sessions changed (a
    profile set through OCPI was accepted): the Sender is told by a PUT."""

    event_type: Literal["ActiveChargingProfileChanged"] = "ActiveChargingProfileChanged"
    schema_version: Literal[1] = 1
    payload: ActiveChargingProfileChangedPayload


class ChargingProfileRequestSentPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: RequestId
    action: ProfileAction
    partner_id: str  # the CPO we sent it to
    receiver: Party
    session_id: Ci36  # the CPO's
    response_url: str  # ours
    charging_profile: dict[str, Any] | None = None
    duration: Duration | None = None
    response: ChargingProfileResponseType
    timeout_s: Annotated[int, Field(ge=0)]
    at: AwareDatetime


class ChargingProfileRequestSent(EventMeta):
    """As eMSP: we sent a request to a partner CPO and it answered."""

    event_type: Literal["ChargingProfileRequestSent"] = "ChargingProfileRequestSent"
    schema_version: Literal[1] = 1
    payload: ChargingProfileRequestSentPayload


class ChargingProfileResultReceivedPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: RequestId
    action: ProfileAction
    partner_id: str
    result: ChargingProfileResultType
    active_profile: dict[str, Any] | None = None
    at: AwareDatetime


class ChargingProfileResultReceived(EventMeta):
    """As eMSP: the CPO POSTed the charger's outcome to our response_url."""

    event_type: Literal["ChargingProfileResultReceived"] = "ChargingProfileResultReceived"
    schema_version: Literal[1] = 1
    payload: ChargingProfileResultReceivedPayload


class ActiveChargingProfileReceivedPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    partner_id: str  # the CPO
    sender: Party  # its party
    session_id: Ci36  # the CPO's
    active_profile: dict[str, Any]
    at: AwareDatetime


class ActiveChargingProfileReceived(EventMeta):
    """As eMSP: a CPO PUT the ActiveChargingProfile of one of its sessions
    (keyed ``COUNTRY_CODE/PARTY_ID/SESSION_ID`` of the CPO, upper-cased)."""

    event_type: Literal["ActiveChargingProfileReceived"] = "ActiveChargingProfileReceived"
    schema_version: Literal[1] = 1
    payload: ActiveChargingProfileReceivedPayload


ChargingProfileEvent = (
    ChargingProfileRequestAccepted
    | ChargingProfileRequestDeclined
    | ChargerProfileAnswered
    | ChargingProfileDeadlinePassed
    | ChargingProfileResultDecided
    | ActiveChargingProfileChanged
    | ChargingProfileRequestSent
    | ChargingProfileResultReceived
    | ActiveChargingProfileReceived
)
