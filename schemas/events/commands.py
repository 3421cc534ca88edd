"""Command events (topic ``ocpi.commands.v1``), keyed by command id.

Two roles share the topic:

- **received commands**, we as CPO (a partner eMSP commands one of our
  chargers): the API records ``CommandAccepted`` (the timeout is armed from
  that moment: its ``deadline``) or ``CommandDeclined``; the OCPP gateway
  that holds the charger records ``ChargerCommandAnswered``; a timer records
  ``CommandDeadlinePassed``; the command-results processor decides the one
  outcome, ``CommandResultDecided`` (whichever of the charger's answer or the
  deadline comes first in the command's partition), and the callback sender
  POSTs it to ``response_url``;
- **sent commands**, we as eMSP (our ops or apps command a partner CPO's
  charger): ``CommandSent`` (with the CPO's CommandResponse) and
  ``CommandResultReceived`` (what the CPO POSTed to our ``response_url``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.events.envelope import EventMeta, Party
from schemas.ocpi.commands import CommandResponseType, CommandResultType, CommandType
from schemas.ocpi.common import CountryCode, PartyId
from schemas.ocpi.types import DisplayText, ci

Ci36 = Annotated[str, ci(36)]
CommandId = Annotated[str, Field(min_length=1, max_length=64)]
ChargePointId = Annotated[str, Field(min_length=1, max_length=48)]


class CommandTarget(BaseModel):
    """Which charger the command is for, resolved by the CPO at acceptance
    through the charge point registry. ``evse_uid``/``connector_id`` are
    absent when the request leaves the choice to the charger; the OCPP
    connector id (1-based) is absent likewise."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    country_code: CountryCode
    party_id: PartyId
    location_id: Ci36
    evse_uid: Ci36 | None = None
    connector_id: Ci36 | None = None
    charge_point_id: ChargePointId
    ocpp_connector_id: Annotated[int, Field(ge=0)] | None = None
    # STOP_SESSION: our session to stop; RESERVE_NOW / CANCEL_RESERVATION:
    # the reservation id we give the charger (unique across eMSPs).
    session_id: Ci36 | None = None
    ocpp_reservation_id: Annotated[int, Field(ge=0)] | None = None


class CommandAcceptedPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: CommandId
    command: CommandType
    sender: Party  # the eMSP that sent it
    partner_id: str
    response_url: str
    # The OCPI request object as received (StartSession, ...), JSON form.
    request: dict[str, Any]
    target: CommandTarget
    timeout_s: Annotated[int, Field(ge=1)]
    deadline: AwareDatetime
    at: AwareDatetime


class CommandAccepted(EventMeta):
    """We answered ACCEPTED: the command goes to the charger; its result is
    due by ``deadline``."""

    event_type: Literal["CommandAccepted"] = "CommandAccepted"
    schema_version: Literal[1] = 1
    payload: CommandAcceptedPayload


class CommandDeclinedPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: CommandId
    command: CommandType
    sender: Party
    partner_id: str
    result: Literal[
        CommandResponseType.REJECTED,
        CommandResponseType.NOT_SUPPORTED,
        CommandResponseType.UNKNOWN_SESSION,
    ]
    message: Annotated[str, Field(max_length=512)] | None = None
    request: dict[str, Any]
    at: AwareDatetime


class CommandDeclined(EventMeta):
    """We answered REJECTED, NOT_SUPPORTED or UNKNOWN_SESSION: nothing goes to
    a charger and no result will follow."""

    event_type: Literal["CommandDeclined"] = "CommandDeclined"
    schema_version: Literal[1] = 1
    payload: CommandDeclinedPayload


class ChargerCommandAnsweredPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: CommandId
    charge_point_id: ChargePointId
    result: CommandResultType
    # What the charger said, in its own protocol's words ("Accepted",
    # "Occupied", "UnlockFailed", ...), for operators.
    charger_status: Annotated[str, Field(max_length=40)] | None = None
    message: Annotated[str, Field(max_length=512)] | None = None
    at: AwareDatetime


class ChargerCommandAnswered(EventMeta):
    """The charger (through the gateway holding its connection) answered."""

    event_type: Literal["ChargerCommandAnswered"] = "ChargerCommandAnswered"
    schema_version: Literal[1] = 1
    payload: ChargerCommandAnsweredPayload


class CommandDeadlinePassedPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: CommandId
    deadline: AwareDatetime
    at: AwareDatetime


class CommandDeadlinePassed(EventMeta):
    """The command's deadline passed (stated by the timer; may be stated more
    than once, and after the charger answered: the decision ignores it then)."""

    event_type: Literal["CommandDeadlinePassed"] = "CommandDeadlinePassed"
    schema_version: Literal[1] = 1
    payload: CommandDeadlinePassedPayload


class CommandResultDecidedPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: CommandId
    command: CommandType
    partner_id: str
    response_url: str
    result: CommandResultType
    message: list[DisplayText] | None = None
    decided_by: Literal["charger", "deadline", "platform"]
    at: AwareDatetime


class CommandResultDecided(EventMeta):
    """The one outcome of an accepted command, to be POSTed to its
    ``response_url``. Its event id is derived from the command id, so a
    re-run of the decision writes the same id."""

    event_type: Literal["CommandResultDecided"] = "CommandResultDecided"
    schema_version: Literal[1] = 1
    payload: CommandResultDecidedPayload


class CommandSentPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: CommandId
    command: CommandType
    partner_id: str  # the CPO we sent it to
    receiver: Party
    # The request as sent, with our response_url.
    request: dict[str, Any]
    response: CommandResponseType
    timeout_s: Annotated[int, Field(ge=0)]
    message: list[DisplayText] | None = None
    at: AwareDatetime


class CommandSent(EventMeta):
    """As eMSP: we sent a command to a partner CPO and it answered."""

    event_type: Literal["CommandSent"] = "CommandSent"
    schema_version: Literal[1] = 1
    payload: CommandSentPayload


class CommandResultReceivedPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: CommandId
    partner_id: str
    result: CommandResultType
    message: list[DisplayText] | None = None
    at: AwareDatetime


class CommandResultReceived(EventMeta):
    """As eMSP: the CPO POSTed the charger's result to our response_url."""

    event_type: Literal["CommandResultReceived"] = "CommandResultReceived"
    schema_version: Literal[1] = 1
    payload: CommandResultReceivedPayload


CommandEvent = (
    CommandAccepted
    | CommandDeclined
    | ChargerCommandAnswered
    | CommandDeadlinePassed
    | CommandResultDecided
    | CommandSent
    | CommandResultReceived
)
