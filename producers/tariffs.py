"""The Tariffs slice: a tariff's state, the decisions on writes to it, and
the fold of its events. Pure: no I/O, the clock passed in.

**State.** ``TariffState`` is the version we hold (None while deleted) and
the ``last_updated`` a later PUT must not be older than (docs/adr/0004); a
deletion leaves a tombstone stamped with the later of its own time and the
deleted version's, so only a PUT strictly later than both brings the tariff
back (docs/adr/0011). Its numbers are Decimals, digit for digit; the JSON
form of events and views carries them as the floats that print them
(``served``).

**Decisions.** ``decide`` judges a PUT or DELETE against the state the write
path holds (``producers.write_path``, docs/adr/0022: the tariff as of its
latest event in the log) and returns the event to record, or raises
``RefusedError`` with the OCPI status to answer. Every well-formed PUT is
recorded, an older one too: which version wins is decided by ``evolve``.

The write path, the MongoDB view (projections/mongo/tariffs.py) and the
tariff history the CDR builder prices with (projections/mongo/history.py)
all fold with this one ``evolve``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from producers.write_path import Decision, Origin, RefusedError, Slice
from schemas.events import Party, TariffDeleted, TariffPut, new_event_id
from schemas.events.tariffs import TariffDeletedPayload, TariffPutPayload, TariffRef
from schemas.ocpi.common import fold, parse_ocpi_datetime, sort_stamp
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.tariffs import Tariff, dumps_exact, exact_numbers, json_numbers, loads_exact
from schemas.ocpi.types import to_json
from schemas.topics import TARIFFS

__all__ = [
    "SLICE",
    "DeleteTariff",
    "Origin",
    "PlannedTariff",
    "PutTariff",
    "RefusedError",
    "TariffState",
    "authorize_write",
    "decide",
    "evolve",
    "find",
    "held",
    "held_at",
    "is_stale",
    "owner_of",
    "plan_delete",
    "plan_put",
    "served",
]

Json = dict[str, Any]


# --- state and fold -------------------------------------------------------------


# Versions held before the current one that a state keeps (a CDR is
# reconciled with the version held when its session started).
KEPT_VERSIONS = 8


@dataclass(frozen=True)
class TariffState:
    """``tariff``: the OCPI Tariff held, numbers as Decimals (None while
    deleted); ``stamp``: the fixed-width ``last_updated`` of that version, or
    of the tombstone; ``since``: when we recorded it (fixed width; empty in
    states folded before it was kept); ``before``: the versions held
    earlier, ``(since, tariff)`` oldest first, the last ``KEPT_VERSIONS``."""

    tariff: Json | None
    stamp: str
    since: str = ""
    before: tuple[tuple[str, Json | None], ...] = ()

    def to_json(self) -> Json:
        return {
            "tariff": self.tariff,
            "stamp": self.stamp,
            "since": self.since,
            "before": [[since, tariff] for since, tariff in self.before],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TariffState:
        return cls(
            tariff=data.get("tariff"),
            stamp=data["stamp"],
            since=data.get("since", ""),
            before=tuple((since, tariff) for since, tariff in data.get("before", ())),
        )


def evolve(state: TariffState | None, event: object) -> TariffState | None:
    """The state after one event; the same object when the event is not
    applied (older than the version held, or not a tariff event)."""
    if not isinstance(event, TariffPut | TariffDeleted):
        return state
    stamp = sort_stamp(event.payload.last_updated)
    since = sort_stamp(event.recorded_at)
    before: tuple[tuple[str, Json | None], ...] = ()
    if state is not None:
        before = (*state.before, (state.since, state.tariff))[-KEPT_VERSIONS:]
    if isinstance(event, TariffDeleted):
        # The deletion removes whatever version is held (it was judged
        # against that version), and no PUT up to the later stamp passes.
        kept = stamp if state is None else max(stamp, state.stamp)
        return TariffState(None, kept, since, before)
    if state is not None and (
        stamp < state.stamp or (state.tariff is None and stamp == state.stamp)
    ):
        return state  # stale: recorded, not applied
    return TariffState(exact_numbers(event.payload.object), stamp, since, before)


def held(state: TariffState | None) -> Json | None:
    """The tariff we hold with exact numbers (what a price is computed with),
    None if none or deleted."""
    return None if state is None else state.tariff


def held_at(state: TariffState | None, at: datetime) -> Json | None:
    """The version we held at ``at`` (a CDR's session start): a CPO prices a
    session with the tariff as it was when the session began, so a version
    published while the car charged must not judge it. When ``at`` is before
    every version we know (we heard of the tariff later, or the older ones
    were let go), the earliest we know; None when that was a deletion."""
    if state is None:
        return None
    versions = (*state.before, (state.since, state.tariff))
    stamp = sort_stamp(at)
    chosen = versions[0][1]
    for since, tariff in versions:
        if since <= stamp:
            chosen = tariff
    return chosen


def served(state: TariffState | None) -> Json | None:
    """The tariff in its JSON form (numbers as the floats that print them):
    what the view stores and partners read."""
    tariff = held(state)
    return None if tariff is None else dict(json_numbers(tariff))


def _load(raw: bytes) -> TariffState:
    return TariffState.from_json(loads_exact(raw))


# The Tariffs slice as the write path holds it (docs/adr/0022); the stored
# state keeps every number digit for digit.
SLICE: Slice[TariffState] = Slice(
    "tariffs", TARIFFS, evolve, lambda state: dumps_exact(state.to_json()), _load
)


@dataclass(frozen=True)
class PutTariff:
    """An OCPI PUT of the tariff ``ref`` names; ``body`` decoded with exact
    numbers (``loads_exact``)."""

    ref: TariffRef
    body: Any
    origin: Origin


@dataclass(frozen=True)
class DeleteTariff:
    """An OCPI DELETE of the tariff ``ref`` names."""

    ref: TariffRef
    origin: Origin


def decide(
    state: TariffState | None, command: PutTariff | DeleteTariff, now: datetime
) -> Decision[bool]:
    """The event a write records; the answer says whether a PUT created the
    tariff (HTTP 201 rather than 200)."""
    current = held(state)
    if isinstance(command, PutTariff):
        planned = plan_put(command.ref, command.body, current, command.origin, now)
    else:
        planned = plan_delete(command.ref, current, command.origin, now)
    return Decision([planned.event], planned.created)


# --- decisions --------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedTariff:
    event: TariffPut | TariffDeleted
    created: bool  # a PUT of a tariff we did not hold
    # The write is recorded but, being older than what we hold, will not be
    # applied (docs/adr/0004). The answer is a success all the same.
    stale: bool = False


def owner_of(ref: TariffRef) -> Party:
    """The party a tariff belongs to (the URL's country_code/party_id)."""
    return Party(country_code=fold(ref.country_code), party_id=fold(ref.party_id))


def authorize_write(ref: TariffRef, parties: Iterable[Party]) -> Party:
    """A writer may touch only tariffs of its own parties (a partner: the
    roles its token was registered with; ops: us). Returns the party the
    write is recorded for; ``RefusedError`` 2001 otherwise."""
    owner = owner_of(ref)
    if owner not in set(parties):
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS,
            f"{ref.country_code}/{ref.party_id} is not a party registered with this token; "
            "a partner may only write and read its own tariffs",
        )
    return owner


def is_stale(current: Mapping[str, Any] | None, last_updated: datetime) -> bool:
    """Older than the tariff we hold (equal is not stale: last writer wins)."""
    if current is None:
        return False
    return last_updated < parse_ocpi_datetime(current["last_updated"])


def plan_put(
    ref: TariffRef, body: Any, current: Mapping[str, Any] | None, origin: Origin, now: datetime
) -> PlannedTariff:
    """A PUT of the tariff ``ref`` names. ``body`` is the decoded JSON with
    exact numbers (``tariffs.loads_exact``); ``current`` the tariff we hold
    (None if none or deleted). Raises ``pydantic.ValidationError`` for a
    body that is not a valid Tariff (OCPI 2001) and ``RefusedError``
    otherwise."""
    tariff = Tariff.model_validate(body)
    _same_ids(ref, tariff)
    try:
        obj = to_json(tariff)
    except ValueError as exc:  # a number that cannot be written back digit for digit
        raise RefusedError(OcpiStatus.INVALID_PARAMETERS, str(exc)) from exc
    event = TariffPut(
        event_id=new_event_id(),
        aggregate_key=ref.tariff_key,
        occurred_at=tariff.last_updated,
        recorded_at=now,
        source=origin.source,
        correlation_id=origin.correlation_id,
        payload=TariffPutPayload(**ref.model_dump(), object=obj, last_updated=tariff.last_updated),
    )
    return PlannedTariff(event, current is None, is_stale(current, tariff.last_updated))


def plan_delete(
    ref: TariffRef, current: Mapping[str, Any] | None, origin: Origin, now: datetime
) -> PlannedTariff:
    """A DELETE: the tariff must be one we hold (else OCPI 2000, nothing
    recorded; HTTP 404 for the ops API, 200 for a partner: docs/adr/0039
    §2). The deletion is stamped ``now``."""
    find(current, ref)
    event = TariffDeleted(
        event_id=new_event_id(),
        aggregate_key=ref.tariff_key,
        occurred_at=now,
        recorded_at=now,
        source=origin.source,
        correlation_id=origin.correlation_id,
        payload=TariffDeletedPayload(**ref.model_dump(), last_updated=now),
    )
    return PlannedTariff(event, False)


def find(current: Mapping[str, Any] | None, ref: TariffRef) -> Json:
    """The stored tariff (for GETs); ``RefusedError`` 2000 / HTTP 404 when
    there is none (the status codes have no "unknown tariff")."""
    if current is None:
        raise RefusedError(OcpiStatus.CLIENT_ERROR, f"unknown tariff {ref.tariff_id!r}", 404)
    return dict(current)


def _same_ids(ref: TariffRef, tariff: Tariff) -> None:
    """The ids in a PUT body must name the tariff of the URL."""
    expected = {
        "country_code": (tariff.country_code, ref.country_code),
        "party_id": (tariff.party_id, ref.party_id),
        "id": (tariff.id, ref.tariff_id),
    }
    for name, (sent, url) in expected.items():
        if fold(sent) != fold(url):
            raise RefusedError(
                OcpiStatus.INVALID_PARAMETERS,
                f"{name} in the body is {sent!r}, the URL names {url!r}",
            )
