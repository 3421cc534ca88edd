"""Commands module objects (OCPI 2.2.1, mod_commands.asciidoc).

The five request objects an eMSP POSTs to a CPO's Commands Receiver, the
CommandResponse the CPO answers at once and the CommandResult it POSTs later
to the request's ``response_url``. A ``response_url`` must be an absolute
http(s) URL: any other scheme is refused (we would otherwise be asked to
call ``file:`` or ``gopher:`` URLs on a partner's behalf).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from schemas.ocpi.common import DateTime, OcpiModel
from schemas.ocpi.tokens import Token
from schemas.ocpi.types import DisplayText, Int, Url, ci

Ci36 = Annotated[str, ci(36)]


def _http_url(value: str) -> str:
    if urlsplit(value).scheme.lower() not in ("http", "https"):
        raise ValueError("response_url must be an http or https URL")
    return value


ResponseUrl = Annotated[Url, AfterValidator(_http_url)]


class CommandType(StrEnum):
    CANCEL_RESERVATION = "CANCEL_RESERVATION"
    RESERVE_NOW = "RESERVE_NOW"
    START_SESSION = "START_SESSION"
    STOP_SESSION = "STOP_SESSION"
    UNLOCK_CONNECTOR = "UNLOCK_CONNECTOR"


class CommandResponseType(StrEnum):
    """The CPO's answer to the request (not the charger's)."""

    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    ACCEPTED = "ACCEPTED"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class CommandResultType(StrEnum):
    """The outcome at the charger, POSTed to ``response_url``."""

    ACCEPTED = "ACCEPTED"
    CANCELED_RESERVATION = "CANCELED_RESERVATION"
    EVSE_OCCUPIED = "EVSE_OCCUPIED"
    EVSE_INOPERATIVE = "EVSE_INOPERATIVE"
    FAILED = "FAILED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TIMEOUT = "TIMEOUT"
    UNKNOWN_RESERVATION = "UNKNOWN_RESERVATION"


class CancelReservation(OcpiModel):
    response_url: ResponseUrl
    reservation_id: Ci36


class ReserveNow(OcpiModel):
    response_url: ResponseUrl
    token: Token
    expiry_date: DateTime
    reservation_id: Ci36
    location_id: Ci36
    evse_uid: Ci36 | None = None
    authorization_reference: Ci36 | None = None


class StartSession(OcpiModel):
    response_url: ResponseUrl
    token: Token
    location_id: Ci36
    evse_uid: Ci36 | None = None
    connector_id: Ci36 | None = None
    authorization_reference: Ci36 | None = None


class StopSession(OcpiModel):
    response_url: ResponseUrl
    session_id: Ci36


class UnlockConnector(OcpiModel):
    response_url: ResponseUrl
    location_id: Ci36
    evse_uid: Ci36
    connector_id: Ci36


CommandRequest = CancelReservation | ReserveNow | StartSession | StopSession | UnlockConnector

REQUEST_MODEL: dict[CommandType, type[OcpiModel]] = {
    CommandType.CANCEL_RESERVATION: CancelReservation,
    CommandType.RESERVE_NOW: ReserveNow,
    CommandType.START_SESSION: StartSession,
    CommandType.STOP_SESSION: StopSession,
    CommandType.UNLOCK_CONNECTOR: UnlockConnector,
}


class CommandResponse(OcpiModel):
    result: CommandResponseType
    timeout: Annotated[Int, Field(ge=0)]  # seconds
    message: list[DisplayText] | None = None


class CommandResult(OcpiModel):
    result: CommandResultType
    message: list[DisplayText] | None = None
