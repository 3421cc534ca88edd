"""EVSE status resolution: one status per EVSE from every signal we hold.

Signals come from the party that reports the EVSE (a partner CPO over OCPI,
or our charger gateway) and, as those slices arrive, from faults, sessions,
reservations and occupancy. The shown status is the strongest signal:

    faulted (OUTOFORDER / INOPERATIVE) > CHARGING > RESERVED > occupied (BLOCKED)
    > AVAILABLE > UNKNOWN

PLANNED and REMOVED are life-cycle states set by the owner, not live signals:
while the owner says so they are shown whatever else is observed
(mod_locations, Status: REMOVED "EVSE/Connector is not available anymore").

``resolve_status``, ``evolve`` and ``decide`` are pure; the Faust agent at the
bottom only decodes, calls them, and writes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from schemas.events import EvseStatusReported, EvseStatusResolved, derived_event_id
from schemas.events.locations import EvseStatusResolvedPayload
from schemas.ocpi.locations import EvseStatus

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
    session_active: bool = False
    reserved: bool = False
    occupied: bool = False


def resolve_status(signals: EvseSignals) -> EvseStatus:
    reported = signals.reported_status
    if reported in _LIFECYCLE:
        assert reported is not None
        return reported
    candidates = [reported] if reported is not None else []
    if signals.charger_faulted:
        candidates.append(EvseStatus.OUTOFORDER)
    if signals.session_active:
        candidates.append(EvseStatus.CHARGING)
    if signals.reserved:
        candidates.append(EvseStatus.RESERVED)
    if signals.occupied:
        candidates.append(EvseStatus.BLOCKED)
    if not candidates:
        return EvseStatus.UNKNOWN
    # max() keeps the first of equal ranks: a reported INOPERATIVE stays
    # INOPERATIVE rather than turning into the fault signal's OUTOFORDER.
    return max(candidates, key=_RANK.__getitem__)


def evolve(signals: EvseSignals, event: EvseStatusReported) -> EvseSignals:
    """Fold a report into the signals. A report older than the one we hold is
    kept in the log but changes nothing (see docs/adr/0004)."""
    report = event.payload
    if signals.reported_at is not None and report.last_updated < signals.reported_at:
        return signals
    return signals.model_copy(
        update={"reported_status": report.status, "reported_at": report.last_updated}
    )


def decide(
    signals: EvseSignals, event: EvseStatusReported, now: datetime
) -> tuple[EvseSignals, list[EvseStatusResolved]]:
    after = evolve(signals, event)
    if after == signals:
        return signals, []
    report = event.payload
    resolved = EvseStatusResolved(
        event_id=derived_event_id(event.event_id, "EvseStatusResolved"),
        aggregate_key=event.aggregate_key,
        occurred_at=event.occurred_at,
        recorded_at=now,
        source=event.source,
        correlation_id=event.correlation_id,
        causation_id=event.event_id,
        payload=EvseStatusResolvedPayload(
            country_code=report.country_code,
            party_id=report.party_id,
            location_id=report.location_id,
            evse_uid=report.evse_uid,
            status=resolve_status(after),
            last_updated=report.last_updated,
            reported_status=after.reported_status,
        ),
    )
    return after, [resolved]


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
            event = parse_event(raw)
            if not isinstance(event, EvseStatusReported):
                continue
            key = event.payload.evse_key
            before = signals_from_table(table.get(key))
            after, resolved = decide(before, event, utc_now())
            if after != before:
                table[key] = after.model_dump(mode="json")
            for out in resolved:
                await emit(out)

    return resolve_evse_status
