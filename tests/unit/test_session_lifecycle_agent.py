"""The Faust shell of the session lifecycle, without a broker
(``agent.test_context()``, memory store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust

from processors import session_lifecycle
from processors.session_lifecycle import MeterConfig
from schemas.events import SessionPatched, SessionPut
from tests.unit.charger_facts import meter, started, stopped


async def test_agent_emits_put_then_patches_and_keeps_state_in_its_table(
    tmp_path: Path,
) -> None:
    app: Any = faust.App(
        "test-session-lifecycle", store="memory://", datadir=str(tmp_path), autodiscover=False
    )
    source = app.topic("source", key_type=bytes, value_type=bytes, value_serializer="raw")
    emitted: list[SessionPut | SessionPatched] = []

    async def emit(event: SessionPut | SessionPatched) -> None:
        emitted.append(event)

    agent = session_lifecycle.register(app, source, emit, partitions=1, config=MeterConfig())
    table = app.tables["session-lifecycle"]
    first = started(0, 1000)
    async with agent.test_context() as ctx:
        for fact in (first, meter(15, 4000), first):
            await ctx.put(fact.model_dump_json().encode())
        await ctx.put(b'{"event_type": "ChargerRebooted", "schema_version": 1}')  # unknown: skipped
        await ctx.put(stopped(30, 7500).model_dump_json().encode())
    assert [type(e) for e in emitted] == [SessionPut, SessionPatched, SessionPatched]
    assert emitted[-1].payload.patch["status"] == "COMPLETED"  # type: ignore[union-attr]
    assert emitted[-1].payload.patch["kwh"] == 6.5  # type: ignore[union-attr]
    assert table["ZZ/HUB/S1"]["published"]["status"] == "COMPLETED"
