"""Commands module objects of OCPI 2.3.0 (mod_commands.asciidoc, tag v2.3.0).

Against v2.2.1-d2 the module differs in two places only:

* ``CommandType`` is an OpenEnum: an eMSP may POST a command of its own
  (``/commands/{command}``). We run the five 2.2.1 lists; another one is
  answered NOT_SUPPORTED and nothing is recorded (api/ocpi/received_commands.py).
* The ``token`` of StartSession and ReserveNow is a 2.3.0 Token, whose
  ``type`` is an OpenEnum (``EMAID``...); the mapping gives our Token the
  stand-in ``OTHER`` and keeps the value (``mapping.token_json``).

CommandResponseType and CommandResultType stay closed enums in 2.3.0, and
CancelReservation, StopSession, UnlockConnector, CommandResponse and
CommandResult are 2.2.1's objects field for field (only description text
changed).
"""

from __future__ import annotations

from schemas.ocpi import commands as v221
from schemas.ocpi.v230.tokens import Token

# The same objects in 2.3.0 (v221 models keep unknown fields, ADR 0039).
CancelReservation = v221.CancelReservation
StopSession = v221.StopSession
UnlockConnector = v221.UnlockConnector
CommandResponse = v221.CommandResponse
CommandResult = v221.CommandResult


class ReserveNow(v221.ReserveNow):
    """mod_commands, ReserveNow object (2.3.0): its Token is 2.3.0's."""

    token: Token


class StartSession(v221.StartSession):
    """mod_commands, StartSession object (2.3.0): its Token is 2.3.0's."""

    token: Token


def is_listed_command(command: str) -> bool:
    """Whether a CommandType value (an OpenEnum in 2.3.0) is one of the
    values 2.2.1 lists, the commands we run."""
    return command in v221.CommandType._value2member_map_
