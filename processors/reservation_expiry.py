"""Reservations of our chargers end when they expire unused (docs/adr/0021).

An OCPP 1.6 charger drops an expired reservation without telling anyone, so
the platform states it. Reads ``charger.transactions.v1`` (keyed by location,
so every fact of one reservation is in one partition, in order). A table
keyed by the reservation's session holds the reservations still waiting
(``Held``): made and neither used (a transaction started for its session),
cancelled, nor ended otherwise. A later ``ReservationMade`` of the same
session replaces the entry (mod_commands ReserveNow: a known reservation id
is replaced), so its expiry moves and the earlier one decides nothing.

A timer scans the table and, ``grace`` after a held reservation's expiry,
writes ``ReservationExpiryPassed`` (keyed by the reservation's location,
so into the partition of its facts, with an id derived from the session and
the expiry: stating it again is harmless). The agent decides when it reads
it, after whatever the partition held before it: if the reservation is still
held with that expiry (or an earlier one), ``ReservationEnded(EXPIRED)``
(one id per session) and the entry leaves the table; otherwise nothing. The
session lifecycle and the EVSE status processor fold that event as they fold
a cancellation.

``evolve``, ``decide`` and ``overdue`` are pure; the Faust shell is at the
bottom.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from processors import deadlines
from processors.deadlines import WaitingRule
from schemas.events import (
    Party,
    ReservationEnded,
    ReservationExpiryPassed,
    ReservationMade,
    TransactionStarted,
)
from schemas.events.chargers import (
    ReservationEndedPayload,
    ReservationExpiryPassedPayload,
    ReservationRef,
)

# A fixed namespace for ids derived from a reservation's session key.
_RESERVATION_NS = uuid.UUID("6f1d2b8a-4c3e-4f7a-9b21-0d5e8c7a3f94")


class Held(BaseModel):
    """A reservation made and not yet used, cancelled or expired."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ref: ReservationRef
    expires_at: AwareDatetime
    made_at: AwareDatetime
    made_event_id: uuid.UUID
    aggregate_key: str  # the location key its facts are keyed by
    source: Party
    correlation_id: str


Relevant = ReservationMade | ReservationEnded | TransactionStarted | ReservationExpiryPassed


def _ref(p: Any) -> ReservationRef:
    return ReservationRef(**{name: getattr(p, name) for name in ReservationRef.model_fields})


def _expires(state: Held, event: ReservationExpiryPassed) -> bool:
    return state.expires_at <= event.payload.expires_at


def evolve(state: Held | None, event: Relevant) -> Held | None:
    """The table entry after one event. Made: held (a later one replaces it;
    an earlier one read after it changes nothing). Used, ended, or its expiry
    stated: gone. (The table is keyed by session; a fact of another session
    changes nothing.)"""
    if state is not None and event.payload.session_key != state.ref.session_key:
        return state
    if isinstance(event, ReservationMade):
        p = event.payload
        if state is not None and p.at < state.made_at:
            return state
        return Held(
            ref=_ref(p),
            expires_at=p.expires_at,
            made_at=p.at,
            made_event_id=event.event_id,
            aggregate_key=event.aggregate_key,
            source=event.source,
            correlation_id=event.correlation_id,
        )
    if isinstance(event, ReservationExpiryPassed):
        if state is not None and not _expires(state, event):
            return state  # the reservation was replaced with a later expiry
        return None
    return None  # a transaction used it, or it was cancelled / ended


def expired_event_id(session_key: str) -> uuid.UUID:
    """One id per reservation session: a session's reservation expires once."""
    return uuid.uuid5(_RESERVATION_NS, f"{session_key}:expired")


def decide(state: Held | None, event: Relevant, now: datetime) -> ReservationEnded | None:
    """``ReservationEnded(EXPIRED)`` when the expiry stated is that of a
    reservation still held; nothing otherwise."""
    if state is None or not isinstance(event, ReservationExpiryPassed):
        return None
    if event.payload.session_key != state.ref.session_key or not _expires(state, event):
        return None
    return ReservationEnded(
        event_id=expired_event_id(state.ref.session_key),
        aggregate_key=state.aggregate_key,
        occurred_at=state.expires_at,
        recorded_at=now,
        source=state.source,
        correlation_id=state.correlation_id,
        causation_id=event.event_id,
        payload=ReservationEndedPayload(
            **state.ref.model_dump(), reason="EXPIRED", at=state.expires_at
        ),
    )


def overdue(
    held: list[Held], now: datetime, grace: timedelta = timedelta(0)
) -> list[ReservationExpiryPassed]:
    """The expiry statements for the held reservations whose expiry (plus
    ``grace``) passed. The id is derived from the session and the expiry, so
    stating it again is harmless, and a moved expiry gets a statement of its
    own."""
    return [
        ReservationExpiryPassed(
            event_id=uuid.uuid5(
                _RESERVATION_NS, f"{h.ref.session_key}:{h.expires_at.isoformat()}:passed"
            ),
            aggregate_key=h.aggregate_key,
            occurred_at=h.expires_at,
            recorded_at=now,
            source=h.source,
            correlation_id=h.correlation_id,
            causation_id=h.made_event_id,
            payload=ReservationExpiryPassedPayload(
                **h.ref.model_dump(), expires_at=h.expires_at, at=now
            ),
        )
        for h in held
        if h.expires_at + grace <= now
    ]


def held_from_table(value: Any) -> Held | None:
    return None if value is None else Held.model_validate(value)


# --- Faust shell --------------------------------------------------------------

Emit = Callable[[ReservationEnded | ReservationExpiryPassed], Awaitable[None]]


def rule(grace: timedelta) -> WaitingRule[Held]:
    return WaitingRule(
        name="reservation-expiry",
        relevant=(ReservationMade, ReservationEnded, TransactionStarted, ReservationExpiryPassed),
        key=lambda event: event.payload.session_key,
        load=held_from_table,
        evolve=evolve,
        decide=decide,
        due=lambda held: held.expires_at,
        state_key=lambda held: held.ref.session_key,
        overdue=lambda held, now: list(overdue(held, now, grace)),
    )


def register(
    app: Any, source_topic: Any, emit: Emit, partitions: int, scan_s: float, grace_s: float
) -> tuple[Any, Callable[[], Awaitable[None]]]:
    """Attach the agent, its table (``reservation-expiry``, kept across
    restarts by its changelog topic) and the expiry timer to a Faust app
    (``processors/deadlines.py``); return the agent and the timer's body
    (tests call it directly)."""
    return deadlines.register(
        app, source_topic, emit, partitions, scan_s, rule(timedelta(seconds=grace_s))
    )
