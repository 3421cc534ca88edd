"""The Faust shell of the EVSE status rule, without a broker
(``agent.test_context()``, memory store)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust

from processors import evse_status
from schemas.events import EvseStatusReported, EvseStatusResolved, Party
from schemas.events.locations import EvseStatusReportedPayload
from schemas.ocpi.locations import EvseStatus

T0 = datetime(2026, 2, 1, 10, tzinfo=UTC)


def report(status: EvseStatus, second: int) -> bytes:
    at = T0.replace(second=second)
    return (
        EvseStatusReported(
            event_id=uuid.uuid4(),
            aggregate_key="NL/ABC/LOC1",
            occurred_at=at,
            recorded_at=at,
            source=Party(country_code="NL", party_id="ABC"),
            correlation_id="c",
            payload=EvseStatusReportedPayload(
                country_code="NL",
                party_id="ABC",
                location_id="LOC1",
                evse_uid="E1",
                status=status,
                last_updated=at,
            ),
        )
        .model_dump_json()
        .encode()
    )


async def test_agent_resolves_and_keeps_signals_in_its_table(tmp_path: Path) -> None:
    app: Any = faust.App(
        "test-evse-status", store="memory://", datadir=str(tmp_path), autodiscover=False
    )
    source = app.topic("source", key_type=bytes, value_type=bytes, value_serializer="raw")
    emitted: list[EvseStatusResolved] = []

    async def emit(event: EvseStatusResolved) -> None:
        emitted.append(event)

    agent = evse_status.register(app, source, emit, partitions=1)
    table = app.tables["evse-signals"]
    async with agent.test_context() as ctx:
        await ctx.put(report(EvseStatus.CHARGING, 10))
        await ctx.put(report(EvseStatus.AVAILABLE, 5))  # older: ignored
        await ctx.put(report(EvseStatus.OUTOFORDER, 20))
    assert [e.payload.status for e in emitted] == [EvseStatus.CHARGING, EvseStatus.OUTOFORDER]
    assert table["NL/ABC/LOC1/E1"]["reported_status"] == "OUTOFORDER"


async def test_agent_turns_our_chargers_facts_into_statuses(tmp_path: Path) -> None:
    from tests.unit.test_evse_status_chargers import started, stopped

    app: Any = faust.App(
        "test-evse-status-chargers", store="memory://", datadir=str(tmp_path), autodiscover=False
    )
    source = app.topic("source", key_type=bytes, value_type=bytes, value_serializer="raw")
    emitted: list[EvseStatusResolved] = []

    async def emit(event: EvseStatusResolved) -> None:
        emitted.append(event)

    agent = evse_status.register(app, source, emit, partitions=1)
    table = app.tables["evse-signals"]
    async with agent.test_context() as ctx:
        await ctx.put(started("S1", 0).model_dump_json().encode())
        await ctx.put(b'{"event_type": "SomethingNewer", "payload": {}}')  # skipped
        await ctx.put(stopped("S1", 30).model_dump_json().encode())
    assert [e.payload.status for e in emitted] == [EvseStatus.CHARGING, EvseStatus.UNKNOWN]
    assert table["ZZ/HUB/DEPOT/E1"]["sessions"] == []
