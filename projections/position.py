"""The idempotency guard every projection writer shares.

Each view (a MongoDB document, a MySQL row) stores the Kafka position of the
last event applied to it, in the same write as the change itself. An event
at or below that position has been applied already and changes nothing, so
re-delivery (at-least-once) and replays from offset zero are harmless and a
replay reproduces the live views exactly: the offsets are the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

E = TypeVar("E", covariant=True)


@dataclass(frozen=True)
class Record(Generic[E]):
    """An event with where it sits in the log. ``topic`` is the catalogue
    name, without any deployment prefix."""

    topic: str
    partition: int
    offset: int
    event: E

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


class Writer(Protocol):
    """A view the projection runner keeps: it applies batches of Records."""

    name: str

    def prepare(self) -> None:
        """Create what the view needs (indexes); idempotent."""

    def wipe(self) -> None:
        """Remove every entry of the view."""

    def apply(self, records: Sequence[Record[object]]) -> int:
        """Apply a batch idempotently; return how many entries were written."""
        ...
