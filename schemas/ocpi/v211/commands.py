"""Commands module objects of OCPI 2.1.1 (mod_commands.md, tag 2.1.1-d2).

Four commands (no CANCEL_RESERVATION); the Token in them is 2.1.1's; no
``authorization_reference``; START_SESSION names no connector; a
reservation id is an integer. One object answers both ways: the CPO's
immediate CommandResponse and the result it POSTs to ``response_url`` later
are the same ``{result}`` with the same five values (2.2.1 split them into
CommandResponse, with a timeout and a message, and CommandResult)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from schemas.ocpi.commands import ResponseUrl
from schemas.ocpi.common import DateTime, OcpiModel
from schemas.ocpi.types import Int, ci
from schemas.ocpi.v211.tokens import Token

Ci36 = Annotated[str, ci(36)]


class CommandResponseType(StrEnum):
    """2.1.1 CommandResponseType enum."""

    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    ACCEPTED = "ACCEPTED"
    TIMEOUT = "TIMEOUT"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class CommandResponse(OcpiModel):
    """2.1.1 CommandResponse Object."""

    result: CommandResponseType


class ReserveNow(OcpiModel):
    """2.1.1 ReserveNow Object."""

    response_url: ResponseUrl
    token: Token
    expiry_date: DateTime
    reservation_id: Int
    location_id: Ci36
    evse_uid: Ci36 | None = None


class StartSession(OcpiModel):
    """2.1.1 StartSession Object (no connector_id)."""

    response_url: ResponseUrl
    token: Token
    location_id: Ci36
    evse_uid: Ci36 | None = None


class StopSession(OcpiModel):
    """2.1.1 StopSession Object."""

    response_url: ResponseUrl
    session_id: Ci36


class UnlockConnector(OcpiModel):
    """2.1.1 UnlockConnector Object."""

    response_url: ResponseUrl
    location_id: Ci36
    evse_uid: Ci36
    connector_id: Ci36
