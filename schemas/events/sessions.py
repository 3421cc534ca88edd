"""Events of the Sessions slice (topic ``ocpi.sessions.v1``).

What the CPO that owns a session asserts about it: a partner CPO through our
Receiver interface, or our own session lifecycle processor for sessions at
our chargers (``source`` says which). Keyed by the session key, so every
event of one session keeps its order.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from schemas.events.envelope import EventMeta
from schemas.ocpi.common import DateTime, fold


def session_key(country_code: str, party_id: str, session_id: str) -> str:
    """Aggregate key of a session: owning CPO party and id, upper-folded
    (CiString compares case-insensitively)."""
    return "/".join(fold(part) for part in (country_code, party_id, session_id))


class SessionRef(BaseModel):
    """The session a write targets; identifiers as received."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    country_code: str
    party_id: str
    session_id: str

    @property
    def session_key(self) -> str:
        return session_key(self.country_code, self.party_id, self.session_id)


class SessionPutPayload(SessionRef):
    """``session`` is the complete OCPI 2.2.1 Session as JSON (it passed
    ``schemas.ocpi.sessions.Session``); it replaces the stored one whole,
    ``charging_periods`` included."""

    session: dict[str, Any]
    last_updated: DateTime


class SessionPut(EventMeta):
    """The owning CPO replaced a session whole (OCPI PUT)."""

    event_type: Literal["SessionPut"] = "SessionPut"
    schema_version: Literal[1] = 1
    payload: SessionPutPayload


class SessionPatchedPayload(SessionRef):
    """``patch``: a field absent is unchanged, ``null`` clears an optional
    field, ``charging_periods`` are APPENDED to the stored ones, any other
    field replaces the stored value whole. ``last_updated`` is always in it."""

    patch: dict[str, Any]
    last_updated: DateTime


class SessionPatched(EventMeta):
    """The owning CPO changed some fields of a session (OCPI PATCH)."""

    event_type: Literal["SessionPatched"] = "SessionPatched"
    schema_version: Literal[1] = 1
    payload: SessionPatchedPayload
