"""The idempotency guard every projection writer shares.

Each view (a MongoDB document, a MySQL row) stores the Kafka position of the
last event applied to it, in the same write as the change itself. An event
at or below that position has been applied already and changes nothing, so
re-delivery (at-least-once) and replays from offset zero are harmless and a
replay reproduces the live views exactly: the offsets are the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

E = TypeVar("E", covariant=True)


@dataclass(frozen=True)
class Record(Generic[E]):
    """An event with where it sits in the log. ``topic`` is the catalogue
    name, without any deployment prefix; ``raw``, when known, the bytes the
    log holds for it (what ``serialize_event`` wrote), so a view that keeps
    the event as recorded need not serialise it again."""

    topic: str
    partition: int
    offset: int
    event: E
    raw: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def position_field(self) -> str:
        return position_field(self.topic, self.partition)


def position_field(topic: str, partition: int) -> str:
    """A field name for one topic partition that is safe in MongoDB paths.

    Dots become underscores; Kafka itself refuses topics that differ only by
    '.' versus '_', so the mapping cannot collide.
    """
    return f"{topic.replace('.', '_')}@{partition}"


def already_applied(positions: Mapping[str, int], record: Record[object]) -> bool:
    applied = positions.get(record.position_field)
    return applied is not None and record.offset <= applied


# The event types a writer reads (classes, or unions of them).
EventTypes = tuple[Any, ...]


def read_types(writer: object) -> EventTypes | None:
    """The event types a writer declares with ``event_types``; None when it
    declares none (it looks at records of any type). A writer that declares
    them ignores every other record, by the same tuple, so the runner need
    not hand it a batch that holds none of them (``BatchApplier``)."""
    types: EventTypes | None = getattr(writer, "event_types", None)
    return types


def reads_any(types: EventTypes | None, present: Iterable[type]) -> bool:
    """Whether a writer reading ``types`` has anything among ``present``."""
    return types is None or any(issubclass(t, types) for t in present)


class Writer(Protocol):
    """A view the projection runner keeps: it applies batches of Records.
    It may also say which event types it reads (``read_types``)."""

    name: str

    def prepare(self) -> None:
        """Create what the view needs (indexes); idempotent."""

    def wipe(self) -> None:
        """Remove every entry of the view."""

    def apply(self, records: Sequence[Record[object]]) -> int:
        """Apply a batch idempotently; return how many entries were written."""
        ...
