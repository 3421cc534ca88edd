"""Session events and records for tests of the Sessions slice."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from projections.position import Record
from schemas.events import Party, SessionPatched, SessionPut
from schemas.events.sessions import SessionPatchedPayload, SessionPutPayload, session_key
from schemas.ocpi.common import parse_ocpi_datetime

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
TOPIC = "ocpi.sessions.v1"


def _meta(cc: str, pid: str, sid: str, last_updated: str) -> dict[str, Any]:
    at = parse_ocpi_datetime(last_updated)
    return {
        "event_id": uuid.uuid4(),
        "aggregate_key": session_key(cc, pid, sid),
        "occurred_at": at,
        "recorded_at": T0,
        "source": Party(country_code=cc.upper(), party_id=pid.upper()),
        "correlation_id": "c",
    }


def put(session: dict[str, Any], *, offset: int = 0, partition: int = 0) -> Record[object]:
    cc, pid, sid = session["country_code"], session["party_id"], session["id"]
    event = SessionPut(
        **_meta(cc, pid, sid, session["last_updated"]),
        payload=SessionPutPayload(
            country_code=cc,
            party_id=pid,
            session_id=sid,
            session=session,
            last_updated=parse_ocpi_datetime(session["last_updated"]),
        ),
    )
    return Record(TOPIC, partition, offset, event)


def patch(
    body: dict[str, Any],
    *,
    session_id: str = "S1",
    cc: str = "NL",
    pid: str = "ABC",
    offset: int = 0,
    partition: int = 0,
) -> Record[object]:
    event = SessionPatched(
        **_meta(cc, pid, session_id, body["last_updated"]),
        payload=SessionPatchedPayload(
            country_code=cc,
            party_id=pid,
            session_id=session_id,
            patch=body,
            last_updated=parse_ocpi_datetime(body["last_updated"]),
        ),
    )
    return Record(TOPIC, partition, offset, event)
