"""The results processor: exactly one result per accepted command, whichever
of the charger's answer and the deadline comes first (pure rule, then the
Faust shell without a broker)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faust

from processors import command_results
from processors.command_results import Pending, decide, evolve, overdue
from schemas.events import (
    ChargerCommandAnswered,
    CommandAccepted,
    CommandDeadlinePassed,
    CommandResultDecided,
    Party,
    derived_event_id,
)
from schemas.events.commands import (
    ChargerCommandAnsweredPayload,
    CommandAcceptedPayload,
    CommandDeadlinePassedPayload,
    CommandTarget,
)
from schemas.ocpi.commands import CommandResultType, CommandType

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
EMSP = Party(country_code="NL", party_id="ABD")
URL = "https://emsp.example.com/cb/1"


def accepted(command_id: str = "C1", timeout_s: int = 30) -> CommandAccepted:
    return CommandAccepted(
        event_id=uuid.uuid4(),
        aggregate_key=command_id,
        occurred_at=T0,
        recorded_at=T0,
        source=EMSP,
        correlation_id="corr",
        payload=CommandAcceptedPayload(
            command_id=command_id,
            command=CommandType.START_SESSION,
            sender=EMSP,
            partner_id="abc",
            response_url=URL,
            request={"response_url": URL},
            target=CommandTarget(
                country_code="ZZ", party_id="HUB", location_id="L1", charge_point_id="CP1"
            ),
            timeout_s=timeout_s,
            deadline=T0 + timedelta(seconds=timeout_s),
            at=T0,
        ),
    )


def answered(command_id: str = "C1", result: str = "ACCEPTED") -> ChargerCommandAnswered:
    return ChargerCommandAnswered(
        event_id=uuid.uuid4(),
        aggregate_key=command_id,
        occurred_at=T0 + timedelta(seconds=2),
        recorded_at=T0 + timedelta(seconds=2),
        source=Party(country_code="ZZ", party_id="HUB"),
        correlation_id="gw",
        payload=ChargerCommandAnsweredPayload(
            command_id=command_id,
            charge_point_id="CP1",
            result=CommandResultType(result),
            charger_status="Accepted",
            at=T0 + timedelta(seconds=2),
        ),
    )


def deadline(command_id: str = "C1") -> CommandDeadlinePassed:
    [event] = overdue(
        [evolve(None, accepted(command_id))],  # type: ignore[list-item]
        T0 + timedelta(seconds=31),
    )
    return event


def run(events: list[Any]) -> tuple[Pending | None, list[CommandResultDecided]]:
    state: Pending | None = None
    results = []
    for event in events:
        if (result := decide(state, event, T0 + timedelta(seconds=40))) is not None:
            results.append(result)
        state = evolve(state, event)
    return state, results


def test_answer_then_deadline_gives_one_charger_result() -> None:
    acc = accepted()
    state, results = run([acc, answered(), deadline()])
    assert state is None
    [result] = results
    assert (result.payload.result, result.payload.decided_by) == (
        CommandResultType.ACCEPTED,
        "charger",
    )
    assert result.event_id == derived_event_id(acc.event_id, "result")
    assert (result.payload.response_url, result.payload.partner_id) == (URL, "abc")
    assert result.aggregate_key == "C1"


def test_deadline_then_answer_gives_one_timeout() -> None:
    _, results = run([accepted(), deadline(), answered()])
    [result] = results
    assert (result.payload.result, result.payload.decided_by) == (
        CommandResultType.TIMEOUT,
        "deadline",
    )


def test_duplicates_and_unknown_commands_decide_nothing_more() -> None:
    acc = accepted()
    _, results = run([acc, acc, answered(), answered(), deadline(), deadline()])
    assert len(results) == 1
    assert run([answered("C9"), deadline("C9")])[1] == []


def test_a_rerun_emits_the_same_result_id() -> None:
    acc = accepted()
    first = run([acc, deadline()])[1]
    again = run([acc, deadline()])[1]
    assert [r.event_id for r in first] == [r.event_id for r in again]


def test_overdue_states_only_passed_deadlines_with_stable_ids() -> None:
    pending = [evolve(None, accepted("A", 10)), evolve(None, accepted("B", 60))]
    now = T0 + timedelta(seconds=11)
    [event] = overdue(pending, now)  # type: ignore[arg-type]
    assert event.payload.command_id == "A" and event.aggregate_key == "A"
    assert event.payload.deadline == T0 + timedelta(seconds=10)
    assert overdue(pending, now)[0].event_id == event.event_id  # type: ignore[arg-type]
    assert isinstance(event.payload, CommandDeadlinePassedPayload)


async def test_agent_decides_once_and_drops_the_command_from_its_table(tmp_path: Path) -> None:
    app: Any = faust.App(
        "test-command-results", store="memory://", datadir=str(tmp_path), autodiscover=False
    )
    source = app.topic("source", key_type=bytes, value_type=bytes, value_serializer="raw")
    emitted: list[Any] = []

    async def emit(event: Any) -> None:
        emitted.append(event)

    agent = command_results.register(app, source, emit, partitions=1, scan_s=1.0)
    table = app.tables["command-results"]
    async with agent.test_context() as ctx:
        await ctx.put(accepted("C1").model_dump_json().encode())
        await ctx.put(accepted("C2").model_dump_json().encode())
        assert set(table.keys()) == {"C1", "C2"}
        await ctx.put(b'{"event_type": "CommandRebooted", "schema_version": 1}')  # skipped
        for event in (answered("C1", "REJECTED"), deadline("C1"), deadline("C2"), answered("C2")):
            await ctx.put(event.model_dump_json().encode())
    assert [(e.payload.command_id, e.payload.result.value) for e in emitted] == [
        ("C1", "REJECTED"),
        ("C2", "TIMEOUT"),
    ]
    assert "C1" not in table and "C2" not in table
