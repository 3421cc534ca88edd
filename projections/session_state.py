"""The fold of one session's events into the Session we serve. Pure.

``evolve(session, event)`` takes the stored Session (JSON form, None if we
hold none) and one event of ``ocpi.sessions.v1``:

* ``SessionPut`` replaces the session whole, ``charging_periods`` included
  (mod_sessions, "PUT Method");
* ``SessionPatched`` merges the fragment: absent fields unchanged, ``null``
  clears, ``charging_periods`` appended (mod_sessions, "PATCH Method"); a
  PATCH of a session we do not hold changes nothing (the API refuses it, so
  only a log written by hand could hold one);
* a write older (``last_updated``) than the session held is kept in the log
  and changes nothing (docs/adr/0004); equal timestamps apply, so a PATCH
  stamped like the PUT before it is not lost.

Every MongoDB and MySQL view of sessions folds with this one function, so a
replay rebuilds the same session everywhere.
"""

from __future__ import annotations

import copy
from typing import Any

from schemas.events import SessionPatched, SessionPut
from schemas.ocpi.common import format_ocpi_datetime
from schemas.ocpi.sessions import is_older, merge_session_patch

Json = dict[str, Any]


def evolve(session: Json | None, event: object) -> Json | None:
    if isinstance(event, SessionPut):
        incoming = format_ocpi_datetime(event.payload.last_updated)
        if session is not None and is_older(session.get("last_updated"), incoming):
            return session
        return copy.deepcopy(event.payload.session)
    if isinstance(event, SessionPatched):
        if session is None:
            return None
        incoming = format_ocpi_datetime(event.payload.last_updated)
        if is_older(session.get("last_updated"), incoming):
            return session
        return merge_session_patch(session, event.payload.patch)
    return session
