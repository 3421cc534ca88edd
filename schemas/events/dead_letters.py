"""Events of quarantined events (dead letters), on topic
``ocpi-hub.dead-letters.v1``.

When a projection cannot apply an event to one of its views (the event does
not decode, the store refuses a value, the fold raises), the event is set
aside for that view and the partition goes on (docs/adr/0028). These are
the facts about such an event: it was quarantined (again, with the error of
the latest attempt), or it was resolved by a retry. Both are keyed by the
source position, ``TOPIC/PARTITION/OFFSET``, so everything about one source
event keeps its order; one source event may be quarantined by several
views, each a dead letter of its own (``view``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events.envelope import EventMeta

# The view name of an event no view could read: it did not decode.
DECODE = "decode"


def source_key(topic: str, partition: int, offset: int) -> str:
    """The Kafka key of a dead letter: where its event sits (catalogue topic
    name, without deployment prefix)."""
    return f"{topic}/{partition}/{offset}"


def dead_letter_id(view: str, topic: str, partition: int, offset: int) -> str:
    """One view's dead letter of one source event."""
    return f"{view}|{source_key(topic, partition, offset)}"


class SourcePosition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    view: str = Field(min_length=1, max_length=100)
    source_topic: str = Field(min_length=1, max_length=249)
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)

    @property
    def dead_letter_id(self) -> str:
        return dead_letter_id(
            self.view, self.source_topic, self.source_partition, self.source_offset
        )


class EventQuarantinedPayload(SourcePosition):
    """``source_key``/``source_value`` are a copy of the Kafka record for
    inspection (the log itself, kept forever, stays the original a retry
    reads): UTF-8 text, or base64 when the bytes are not UTF-8; a value beyond
    the copy limit is cut (``value_truncated``). ``error_message`` never
    quotes input values (a validation error names the field, not its value)."""

    source_key: str | None = None
    source_value: str | None = None
    value_encoding: Literal["utf-8", "base64"] = "utf-8"
    value_truncated: bool = False
    error_type: str = Field(min_length=1, max_length=200)
    error_message: str = Field(max_length=2000)


class EventQuarantined(EventMeta):
    """A view could not apply the event at the source position; the view
    went on without it. A retry that fails again is the same fact again,
    with the new error."""

    event_type: Literal["EventQuarantined"] = "EventQuarantined"
    schema_version: Literal[1] = 1
    payload: EventQuarantinedPayload


class QuarantinedEventResolvedPayload(SourcePosition):
    """``APPLIED``: the retry applied the event to the view. ``SUPERSEDED``:
    the view had applied later events of the same key meanwhile, so the
    position guard skipped it (the view is not taken back in time;
    ``ocpi-hub replay`` folds it in its place, docs/adr/0028)."""

    outcome: Literal["APPLIED", "SUPERSEDED"]


class QuarantinedEventResolved(EventMeta):
    """An operator's retry settled a quarantined event."""

    event_type: Literal["QuarantinedEventResolved"] = "QuarantinedEventResolved"
    schema_version: Literal[1] = 1
    payload: QuarantinedEventResolvedPayload
