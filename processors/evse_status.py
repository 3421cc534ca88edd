"""EVSE status resolution: one status per EVSE from every signal we hold.

Signals come from the party that reports the EVSE (a partner CPO over OCPI,
or our operators) and, for our own chargers, from their facts on
``charger.transactions.v1``: a transaction running (charging), a reservation
held (reserved); and what the OCPP gateway reports of each connector
(``ConnectorStatusReported``: faulted, unavailable, occupied). The shown
status is the strongest signal:

    faulted (OUTOFORDER / INOPERATIVE) > CHARGING > RESERVED > occupied (BLOCKED)
    > AVAILABLE > UNKNOWN

PLANNED and REMOVED are life-cycle states set by the owner, not live signals:
while the owner says so they are shown whatever else is observed
(mod_locations, Status: REMOVED "EVSE/Connector is not available anymore").

``resolve_status``, ``evolve``, ``decide``, ``apply_charger_signal`` and
``decide_charger`` are pure; the Faust agent at the bottom only decodes,
calls them, and writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import structlog
from pydantic import AwareDatetime, BaseModel, ConfigDict

from schemas.events import (
    ConnectorStatusReported,
    EventMeta,
    EvseStatusReported,
    EvseStatusResolved,
    LocationObjectPatched,
    LocationObjectPut,
    ReservationEnded,
    ReservationMade,
    TransactionStarted,
    TransactionStopped,
    derived_event_id,
)
from schemas.events.locations import (
    EvseRef,
    EvseStatusResolvedPayload,
    LocationObjectRef,
    ObjectLevel,
)
from schemas.ocpi.common import fold, parse_ocpi_datetime
from schemas.ocpi.locations import EvseStatus

log = structlog.get_logger(__name__)

_LIFECYCLE = frozenset({EvseStatus.PLANNED, EvseStatus.REMOVED})

# Higher wins. Each live signal maps onto one of these statuses.
_RANK: dict[EvseStatus, int] = {
    EvseStatus.OUTOFORDER: 5,
    EvseStatus.INOPERATIVE: 5,
    EvseStatus.CHARGING: 4,
    EvseStatus.RESERVED: 3,
    EvseStatus.BLOCKED: 2,
    EvseStatus.AVAILABLE: 1,
    EvseStatus.UNKNOWN: 0,
}


class EvseSignals(BaseModel):
    """What the platform currently knows about one EVSE."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reported_status: EvseStatus | None = None
    reported_at: AwareDatetime | None = None
    charger_faulted: bool = False
    # The charger says a connector of the EVSE is Unavailable (OCPP 1.6),
    # or that it is free (Available).
    charger_inoperative: bool = False
    charger_available: bool = False
    session_active: bool = False
    reserved: bool = False
    occupied: bool = False
    # Our chargers' facts behind session_active and reserved: the sessions
    # (folded ids) with a transaction running, and those holding a
    # reservation; the latest fact's time.
    sessions: tuple[str, ...] = ()
    reservations: tuple[str, ...] = ()
    charger_at: AwareDatetime | None = None


def resolve_status(signals: EvseSignals) -> EvseStatus:
    reported = signals.reported_status
    if reported in _LIFECYCLE:
        assert reported is not None
        return reported
    candidates = [reported] if reported is not None else []
    if signals.charger_faulted:
        candidates.append(EvseStatus.OUTOFORDER)
    if signals.charger_inoperative:
        candidates.append(EvseStatus.INOPERATIVE)
    if signals.session_active:
        candidates.append(EvseStatus.CHARGING)
    if signals.reserved:
        candidates.append(EvseStatus.RESERVED)
    if signals.occupied:
        candidates.append(EvseStatus.BLOCKED)
    if signals.charger_available:
        candidates.append(EvseStatus.AVAILABLE)
    if not candidates:
        return EvseStatus.UNKNOWN
    # max() keeps the first of equal ranks: a reported INOPERATIVE stays
    # INOPERATIVE rather than turning into the fault signal's OUTOFORDER.
    return max(candidates, key=_RANK.__getitem__)


@dataclass(frozen=True)
class StatusReport:
    """One EVSE status as its owner stated it, whatever the event carried it:
    a status report, or a PUT/PATCH of the location, an EVSE or (never with a
    status) a connector."""

    ref: EvseRef
    status: EvseStatus
    last_updated: datetime


def reports_of(event: object) -> list[StatusReport]:
    """The EVSE statuses an event states (none for most connector writes)."""
    if isinstance(event, EvseStatusReported):
        report = event.payload
        return [StatusReport(_ref(report, report.evse_uid), report.status, report.last_updated)]
    if isinstance(event, LocationObjectPut):
        return _written(event.payload, event.payload.object)
    if isinstance(event, LocationObjectPatched):
        return _written(event.payload, event.payload.patch)
    return []


def _written(ref: LocationObjectRef, body: dict[str, Any]) -> list[StatusReport]:
    if ref.level is ObjectLevel.CONNECTOR:
        return []
    if ref.level is ObjectLevel.EVSE:
        assert ref.evse_uid is not None
        return _evse_reports(ref, [{**body, "uid": ref.evse_uid}])
    return _evse_reports(ref, body.get("evses") or [])


def _evse_reports(p: LocationObjectRef, evses: list[dict[str, Any]]) -> list[StatusReport]:
    return [
        StatusReport(
            _ref(p, str(evse["uid"])),
            EvseStatus(evse["status"]),
            parse_ocpi_datetime(evse["last_updated"]),
        )
        for evse in evses
        if "status" in evse and "last_updated" in evse
    ]


def _ref(p: LocationObjectRef | EvseRef | Any, evse_uid: str) -> EvseRef:
    return EvseRef(
        country_code=p.country_code,
        party_id=p.party_id,
        location_id=p.location_id,
        evse_uid=evse_uid,
    )


def evolve(signals: EvseSignals, report: StatusReport) -> EvseSignals:
    """Fold a report into the signals. A report older than the one we hold is
    kept in the log but changes nothing (see docs/adr/0004)."""
    if signals.reported_at is not None and report.last_updated < signals.reported_at:
        return signals
    return signals.model_copy(
        update={"reported_status": report.status, "reported_at": report.last_updated}
    )


def decide(
    signals: EvseSignals, report: StatusReport, cause: EventMeta, now: datetime
) -> tuple[EvseSignals, list[EvseStatusResolved]]:
    after = evolve(signals, report)
    if after == signals:
        return signals, []
    resolved = EvseStatusResolved(
        event_id=_resolved_id(cause, report),
        aggregate_key=cause.aggregate_key,
        occurred_at=cause.occurred_at,
        recorded_at=now,
        source=cause.source,
        correlation_id=cause.correlation_id,
        causation_id=cause.event_id,
        payload=EvseStatusResolvedPayload(
            **report.ref.model_dump(),
            status=resolve_status(after),
            last_updated=report.last_updated,
            reported_status=after.reported_status,
            signal="owner",
        ),
    )
    return after, [resolved]


def _resolved_id(cause: EventMeta, report: StatusReport) -> uuid.UUID:
    """Deterministic, so a re-run after a crash emits the same id. A status
    report names one EVSE (the purpose keeps the form used since v1); a
    location write may name several."""
    if isinstance(cause, EvseStatusReported):
        return derived_event_id(cause.event_id, "EvseStatusResolved")
    return derived_event_id(cause.event_id, f"EvseStatusResolved:{report.ref.evse_key}")


# --- our chargers' facts ----------------------------------------------------

ChargerSignalKind = Literal["session_started", "session_stopped", "reserved", "reservation_ended"]

# ReservationRef: "#NA" while the reservation names no EVSE yet.
_NO_EVSE = "#NA"


@dataclass(frozen=True)
class ChargerSignal:
    """What one fact of our own charger says about one EVSE."""

    ref: EvseRef
    kind: ChargerSignalKind
    session_id: str  # folded
    at: datetime


def charger_signals_of(event: object) -> list[ChargerSignal]:
    """The EVSE signals a charger fact carries (none for meter values, a
    late authorisation, or a reservation of no EVSE in particular)."""
    kind: ChargerSignalKind
    if isinstance(event, TransactionStarted):
        p: Any = event.payload
        kind = "session_started"
    elif isinstance(event, TransactionStopped):
        p, kind = event.payload, "session_stopped"
    elif isinstance(event, ReservationMade):
        p, kind = event.payload, "reserved"
    elif isinstance(event, ReservationEnded):
        p, kind = event.payload, "reservation_ended"
    else:
        return []
    if p.evse_uid == _NO_EVSE:
        return []
    return [ChargerSignal(_ref(p, p.evse_uid), kind, fold(p.session_id), p.at)]


def apply_charger_signal(signals: EvseSignals, signal: ChargerSignal) -> EvseSignals:
    """Fold a charger fact into the signals. Facts come in the charger's
    order (one partition per location), so no time comparison is needed: a
    stop ends its session, a start of the reserved session uses the
    reservation."""
    sessions = set(signals.sessions)
    reservations = set(signals.reservations)
    sid = signal.session_id
    if signal.kind == "session_started":
        sessions.add(sid)
        reservations.discard(sid)
    elif signal.kind == "session_stopped":
        sessions.discard(sid)
        reservations.discard(sid)
    elif signal.kind == "reserved":
        reservations.add(sid)
    else:
        reservations.discard(sid)
    at = signal.at if signals.charger_at is None else max(signals.charger_at, signal.at)
    return signals.model_copy(
        update={
            "sessions": tuple(sorted(sessions)),
            "session_active": bool(sessions),
            "reservations": tuple(sorted(reservations)),
            "reserved": bool(reservations),
            "charger_at": at,
        }
    )


def _stamp(signals: EvseSignals, at: datetime) -> datetime:
    """A charger-driven resolution's time: the fact's, never before the
    owner's last word nor before an earlier charger fact (a charger's clock
    and our receipt times may disagree), so the views, which keep the
    newest, never pass it over."""
    stamp = at
    for floor in (signals.reported_at, signals.charger_at):
        if floor is not None and floor > stamp:
            stamp = floor
    return stamp


def decide_charger(
    signals: EvseSignals, signal: ChargerSignal, cause: EventMeta, now: datetime
) -> tuple[EvseSignals, list[EvseStatusResolved]]:
    """A resolved status when a charger fact changes the one shown. It is
    stamped with the fact's time, never earlier than the owner's last word,
    so the views (which keep the newest) do not pass it over."""
    return _resolved_if_changed(
        signals, apply_charger_signal(signals, signal), signal.ref, signal.at, cause, now
    )


def _resolved_if_changed(
    before: EvseSignals,
    after: EvseSignals,
    ref: EvseRef,
    at: datetime,
    cause: EventMeta,
    now: datetime,
) -> tuple[EvseSignals, list[EvseStatusResolved]]:
    status = resolve_status(after)
    if after == before or status == resolve_status(before):
        return after, []
    resolved = EvseStatusResolved(
        event_id=derived_event_id(cause.event_id, f"EvseStatusResolved:{ref.evse_key}"),
        aggregate_key=cause.aggregate_key,
        occurred_at=cause.occurred_at,
        recorded_at=now,
        source=cause.source,
        correlation_id=cause.correlation_id,
        causation_id=cause.event_id,
        payload=EvseStatusResolvedPayload(
            **ref.model_dump(),
            status=status,
            last_updated=_stamp(before, at),
            reported_status=after.reported_status,
            signal="charger",
        ),
    )
    return after, [resolved]


# --- what chargers say of their connectors (OCPP StatusNotification) --------------

# OCPP 1.6 ChargePointStatus -> (faulted, inoperative, occupied, available);
# None keeps the signal as it was. A fault keeps occupancy (the car is still
# there); Reserved is a free connector as far as this goes: reservations
# come from ReservationMade, which names the session (docs/adr/0018).
_CONNECTOR_SIGNALS: dict[str, tuple[bool, bool, bool | None, bool]] = {
    "Available": (False, False, False, True),
    "Preparing": (False, False, True, False),
    "Charging": (False, False, True, False),
    "SuspendedEV": (False, False, True, False),
    "SuspendedEVSE": (False, False, True, False),
    "Finishing": (False, False, True, False),
    "Reserved": (False, False, False, True),
    "Unavailable": (False, True, False, False),
    "Faulted": (True, False, None, False),
}


@dataclass(frozen=True)
class ConnectorSignal:
    ref: EvseRef
    status: str  # OCPP ChargePointStatus
    at: datetime


def connector_signals_of(event: object) -> list[ConnectorSignal]:
    if not isinstance(event, ConnectorStatusReported):
        return []
    p = event.payload
    return [ConnectorSignal(_ref(p, p.evse_uid), p.status, p.at)]


def apply_connector_status(signals: EvseSignals, signal: ConnectorSignal) -> EvseSignals:
    faulted, inoperative, occupied, available = _CONNECTOR_SIGNALS[signal.status]
    at = signal.at if signals.charger_at is None else max(signals.charger_at, signal.at)
    return signals.model_copy(
        update={
            "charger_faulted": faulted,
            "charger_inoperative": inoperative,
            "occupied": signals.occupied if occupied is None else occupied,
            "charger_available": available,
            "charger_at": at,
        }
    )


def decide_connector(
    signals: EvseSignals, signal: ConnectorSignal, cause: EventMeta, now: datetime
) -> tuple[EvseSignals, list[EvseStatusResolved]]:
    """A resolved status when a connector report changes the one shown
    (stamped as ``decide_charger`` stamps)."""
    return _resolved_if_changed(
        signals, apply_connector_status(signals, signal), signal.ref, signal.at, cause, now
    )


def signals_from_table(value: Any) -> EvseSignals:
    return EvseSignals() if value is None else EvseSignals.model_validate(value)


# --- Faust shell ------------------------------------------------------------

Emit = Callable[[EvseStatusResolved], Awaitable[None]]


def register(app: Any, source_topic: Any, emit: Emit, partitions: int) -> Any:
    """Attach the agent and its table to a Faust app; return the agent.

    ``emit`` writes a resolved status out (to ``ocpi.evse-status.v1`` in the
    running app). The table survives restarts through its changelog topic.
    """
    import faust  # local import: the pure rule above must not need Faust

    from processors.clock import utc_now
    from schemas.events import parse_event

    table = app.Table(
        "evse-signals",
        default=None,
        partitions=partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
    )

    @app.agent(source_topic, name="resolve-evse-status")  # type: ignore[untyped-decorator]
    async def resolve_evse_status(stream: faust.StreamT[bytes]) -> None:
        async for raw in stream:
            try:
                event = parse_event(raw)
            except ValueError:
                # A type this version does not know (docs/topics.md: skip it,
                # never fail on it).
                log.warning("evse_status_skipped_undecodable")
                continue
            for report in reports_of(event):
                key = report.ref.evse_key
                before = signals_from_table(table.get(key))
                after, resolved = decide(before, report, event, utc_now())
                if after != before:
                    table[key] = after.model_dump(mode="json")
                for out in resolved:
                    await emit(out)
            for signal in charger_signals_of(event):
                key = signal.ref.evse_key
                before = signals_from_table(table.get(key))
                after, resolved = decide_charger(before, signal, event, utc_now())
                if after != before:
                    table[key] = after.model_dump(mode="json")
                for out in resolved:
                    await emit(out)
            for connector_signal in connector_signals_of(event):
                key = connector_signal.ref.evse_key
                before = signals_from_table(table.get(key))
                after, resolved = decide_connector(before, connector_signal, event, utc_now())
                if after != before:
                    table[key] = after.model_dump(mode="json")
                for out in resolved:
                    await emit(out)

    return resolve_evse_status
