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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import structlog
from pydantic import BaseModel

from schemas.events import EventMeta

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
