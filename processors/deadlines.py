"""The Faust shell of a rule that waits for a time: a table of what is
waiting, an agent that decides, and a timer that states the time.

Command deadlines (``processors/command_results.py``, docs/adr/0017) and
reservation expiries (``processors/reservation_expiry.py``, docs/adr/0021)
share it. A Faust table may only be changed inside the agent's stream, so
the timer never decides: it scans the table and writes a "time passed"
event into the waiting item's own partition; the agent reads it after
whatever came before it there and decides with the pure rule. Both events
have derived ids, so stating the time twice, or re-running after a crash,
writes the same ids again. The table has a changelog topic: what waited
before a restart still waits after it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import structlog
from pydantic import AwareDatetime, BaseModel, ConfigDict

from schemas.events import EventMeta, Party, derived_event_id

log = structlog.get_logger(__name__)

S = TypeVar("S", bound=BaseModel)

# A time stated but not yet read back is stated again after this long (the
# first write may have been lost with a crash).
RESTATE_S = 10.0


@dataclass(frozen=True)
class WaitingRule(Generic[S]):
    """What the shell needs of a rule; every function is pure."""

    name: str  # the agent's and the table's name
    relevant: tuple[type[EventMeta], ...]
    key: Callable[[Any], str]  # of a relevant event
    load: Callable[[Any], S | None]  # a table value -> the waiting state
    evolve: Callable[[S | None, Any], S | None]
    decide: Callable[[S | None, Any, datetime], EventMeta | None]
    due: Callable[[S], datetime]  # the time it waits for
    state_key: Callable[[S], str]
    overdue: Callable[[list[S], datetime], list[EventMeta]]


class Awaited(BaseModel):
    """An accepted request waiting for its one result: the charger's answer
    or its own deadline, whichever its partition holds first. ``detail`` is
    what the result repeats of the request (kind-specific)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    deadline: AwareDatetime
    accepted_event_id: uuid.UUID
    source: Party
    correlation_id: str
    detail: dict[str, Any] = {}


def awaiting(
    state: Awaited | None, accepted: EventMeta, key: str, deadline: datetime, **detail: Any
) -> Awaited:
    """The table entry of an accepted request (the same one when the
    acceptance is read again)."""
    if state is not None:
        return state
    return Awaited(
        key=key,
        deadline=deadline,
        accepted_event_id=accepted.event_id,
        source=accepted.source,
        correlation_id=accepted.correlation_id,
        detail=detail,
    )


def result_meta(item: Awaited, cause: Any, now: datetime) -> dict[str, Any]:
    """The envelope of the one result: its id derived from the acceptance,
    so a re-run writes the same id; caused by what decided it."""
    return {
        "event_id": derived_event_id(item.accepted_event_id, "result"),
        "aggregate_key": item.key,
        "occurred_at": cause.payload.at,
        "recorded_at": now,
        "source": item.source,
        "correlation_id": item.correlation_id,
        "causation_id": cause.event_id,
    }


def deadlines_passed(
    items: list[Awaited],
    now: datetime,
    namespace: uuid.UUID,
    state: Callable[[dict[str, Any], Awaited], EventMeta],
) -> list[EventMeta]:
    """``state(meta, item)`` for each item whose deadline passed: the "time
    passed" event, its id derived from the key, so stating it again is
    harmless."""
    return [
        state(
            {
                "event_id": uuid.uuid5(namespace, f"{item.key}:deadline"),
                "aggregate_key": item.key,
                "occurred_at": item.deadline,
                "recorded_at": now,
                "source": item.source,
                "correlation_id": item.correlation_id,
                "causation_id": item.accepted_event_id,
            },
            item,
        )
        for item in items
        if item.deadline <= now
    ]


def awaited_rule(
    name: str,
    relevant: tuple[type[EventMeta], ...],
    key: Callable[[Any], str],
    evolve: Callable[[Awaited | None, Any], Awaited | None],
    decide: Callable[[Awaited | None, Any, datetime], EventMeta | None],
    overdue: Callable[[list[Awaited], datetime], list[EventMeta]],
) -> WaitingRule[Awaited]:
    """A rule whose table holds ``Awaited`` requests until their deadline."""
    return WaitingRule(
        name=name,
        relevant=relevant,
        key=key,
        load=lambda value: None if value is None else Awaited.model_validate(value),
        evolve=evolve,
        decide=decide,
        due=lambda item: item.deadline,
        state_key=lambda item: item.key,
        overdue=overdue,
    )


def register(
    app: Any,
    source_topic: Any,
    emit: Callable[[Any], Awaitable[None]],
    partitions: int,
    scan_s: float,
    rule: WaitingRule[S],
) -> tuple[Any, Callable[[], Awaitable[None]]]:
    """Attach the agent, its table and the timer to a Faust app; return the
    agent and the timer's body (tests call it directly)."""
    import faust  # local import: the pure rules must not need Faust

    from processors.clock import utc_now
    from schemas.events import parse_event

    table = app.Table(
        rule.name,
        default=None,
        partitions=partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
    )
    # key -> (the time stated, when): a moved time is stated anew.
    stated: dict[str, tuple[datetime, float]] = {}

    async def agent(stream: Any) -> None:
        async for raw in stream:
            try:
                event = parse_event(raw)
            except ValueError:
                # A type this version does not know (docs/topics.md: skip it).
                log.warning("waiting_rule_skipped_undecodable", rule=rule.name)
                continue
            if not isinstance(event, rule.relevant):
                continue
            key = rule.key(event)
            before = rule.load(table.get(key))
            decided = rule.decide(before, event, utc_now())
            after = rule.evolve(before, event)
            if decided is not None:
                await emit(decided)
                log.info(
                    "waiting_rule_decided",
                    rule=rule.name,
                    key=key,
                    event_type=getattr(decided, "event_type", None),
                )
            if after != before:
                if after is None:
                    del table[key]
                    stated.pop(key, None)
                else:
                    table[key] = after.model_dump(mode="json")

    async def state_due() -> None:
        now = utc_now()
        clock = time.monotonic()
        waiting = []
        for value in list(table.values()):
            item = rule.load(value)
            if item is None:
                continue
            last = stated.get(rule.state_key(item))
            if last is None or last[0] != rule.due(item) or clock - last[1] >= RESTATE_S:
                waiting.append(item)
        by_key = {rule.state_key(item): item for item in waiting}
        for event in rule.overdue(waiting, now):
            key = rule.key(event)
            stated[key] = (rule.due(by_key[key]), clock)
            await emit(event)
            log.info("waiting_rule_time_passed", rule=rule.name, key=key)

    registered = app.agent(source_topic, name=rule.name)(agent)
    app.timer(scan_s)(state_due)
    return registered, state_due
