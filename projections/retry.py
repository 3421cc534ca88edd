"""``ocpi-hub dead-letters retry``: apply a quarantined event again, once
whatever made it fail is fixed (docs/adr/0028).

The event is read from its source topic (the log is the original; the dead
letter holds a copy), decoded anew and handed to the view that quarantined
it (every view, for one that did not decode), through the same writer and
position guard as the live runner. So a retry cannot take a view back in
time: when the view has applied later events of the same key, the guard
skips the old one (``SUPERSEDED``; a replay folds it in its place). Every
outcome is an event on the dead-letter topic, which the view folds:
``QuarantinedEventResolved`` (``APPLIED``/``SUPERSEDED``), or
``EventQuarantined`` again with the new error. A store that is away fails
the retry without any event: nothing was learnt about the event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from producers.log import EventLog
from projections.dead_letters import (
    Quarantine,
    describe,
    is_transient,
    log_quarantine,
    quarantined_event,
    resolved_event,
)
from projections.position import Record, Writer
from projections.runner import DEAD_LETTER_VIEW, decode, read_messages
from schemas.events import EventMeta, Party
from schemas.events.dead_letters import DECODE

Doc = dict[str, Any]
Outcome = Literal["APPLIED", "SUPERSEDED", "QUARANTINED", "UNAVAILABLE", "GONE"]


@dataclass(frozen=True)
class RetryResult:
    dead_letter_id: str
    outcome: Outcome
    error_type: str | None = None
    error_message: str | None = None


def _quarantine(doc: Doc, error: tuple[str, str], message: Any, event: Any) -> Quarantine:
    source = doc["source"]
    meta = event if isinstance(event, EventMeta) else None
    return Quarantine(
        view=doc["view"],
        topic=source["topic"],
        partition=source["partition"],
        offset=source["offset"],
        key=message.key if message is not None else None,
        value=message.value if message is not None else None,
        error_type=error[0],
        error_message=error[1],
        event_id=meta.event_id if meta else None,
        correlation_id=meta.correlation_id if meta else None,
    )


def _apply_one(writers: Sequence[Writer], record: Record[object]) -> int:
    return sum(w.apply([record]) for w in writers)


async def retry(
    bootstrap: str,
    prefix: str,
    letters: Sequence[Doc],
    writers: Sequence[Writer],
    event_log: EventLog,
    us: Party,
) -> list[RetryResult]:
    """Retry each dead letter (view documents, projections/mongo/
    dead_letters.py) and record the outcome on the dead-letter topic."""
    by_name = {w.name: w for w in writers if w.name != DEAD_LETTER_VIEW}
    raw = await read_messages(
        bootstrap,
        prefix,
        {(d["source"]["topic"], d["source"]["partition"], d["source"]["offset"]) for d in letters},
    )
    results: list[RetryResult] = []
    for doc in letters:
        source = doc["source"]
        message = raw.get((source["topic"], source["partition"], source["offset"]))
        if message is None:
            # Our topics keep every event forever; a missing one means the
            # topic was deleted or truncated by hand.
            results.append(RetryResult(doc["_id"], "GONE"))
            continue
        targets = list(by_name.values()) if doc["view"] == DECODE else [by_name[doc["view"]]]
        event: Any = None
        try:
            record = decode(prefix, message)
            if record is None:  # a type this version skips: nothing to apply
                written = 0
            else:
                event = record.event
                written = await asyncio.to_thread(_apply_one, targets, record)
        except Exception as exc:
            if is_transient(exc):
                error_type, error = describe(exc)
                results.append(RetryResult(doc["_id"], "UNAVAILABLE", error_type, error))
                continue
            q = _quarantine(doc, describe(exc), message, event)
            log_quarantine(q, published=True)
            await event_log.append([quarantined_event(q, us, datetime.now(UTC))])
            results.append(RetryResult(doc["_id"], "QUARANTINED", q.error_type, q.error_message))
            continue
        outcome: Literal["APPLIED", "SUPERSEDED"] = "APPLIED" if written else "SUPERSEDED"
        q = _quarantine(doc, ("", ""), message, event)
        await event_log.append([resolved_event(q, outcome, us, datetime.now(UTC))])
        results.append(RetryResult(doc["_id"], outcome))
    return results
