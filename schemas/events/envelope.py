"""The one envelope every event travels in.

Events are immutable facts; an event once written is never edited. When a
payload has to change shape, the type gets a new ``schema_version``, an
upcaster from the old version to the new one, and a stored fixture of the old
form that a test upcasts (every type is at version 1 so far).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# Namespace for event ids derived from other events (deterministic, so that a
# processor re-running after a crash emits the same ids and consumers can
# drop duplicates).
_DERIVED_NS = uuid.UUID("6c1f3a52-8a0e-4f57-9d0b-2f6f3f0f7a11")


def derived_event_id(causation_id: uuid.UUID, purpose: str) -> uuid.UUID:
    return uuid.uuid5(_DERIVED_NS, f"{causation_id}:{purpose}")


class Party(BaseModel):
    """Who asserted the fact: an OCPI party (country code + party id), or one
    of our own sources (``country_code`` and ``party_id`` of our platform)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    country_code: str = Field(min_length=2, max_length=2)
    party_id: str = Field(min_length=3, max_length=3)


class Actor(BaseModel):
    """Who, among our own operators, asked for the write: an operator account
    (its login), an API key (its id), or the command line (the OS user that
    ran ``ocpi-hub``). Only on events an ops write or an ops command caused
    (docs/adr/0031); a partner's writes are known by ``source``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["account", "api_key", "cli"]
    id: str = Field(min_length=1, max_length=100)

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


class EventMeta(BaseModel):
    """Fields common to every event; subclasses add a literal ``event_type``,
    ``schema_version`` and a typed ``payload``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    aggregate_key: str = Field(min_length=1, max_length=200)
    occurred_at: AwareDatetime
    recorded_at: AwareDatetime
    source: Party
    correlation_id: str = Field(min_length=1, max_length=100)
    causation_id: uuid.UUID | None = None
    # Absent from events recorded before issue 13 and from every event no
    # operator asked for; ``serialize_event`` leaves it out when None, so
    # such events keep the exact form they always had.
    actor: Actor | None = None


def new_event_id() -> uuid.UUID:
    return uuid.uuid4()


def envelope_of(
    key: str,
    now: datetime,
    source: Party,
    correlation_id: str,
    *,
    event_id: uuid.UUID | None = None,
    causation_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """The envelope fields of an event recorded ``now`` about ``key`` (a
    fresh id unless one is derived): ``Event(**envelope_of(...), payload=...)``."""
    return {
        "event_id": event_id or uuid.uuid4(),
        "aggregate_key": key,
        "occurred_at": now,
        "recorded_at": now,
        "source": source,
        "correlation_id": correlation_id,
        "causation_id": causation_id,
    }
