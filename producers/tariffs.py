"""Decisions of the Tariffs slice: requests in, events out. Pure: no I/O,
the clock passed in.

``plan_put`` and ``plan_delete`` judge a write against the tariff we hold
(read by the caller from the view) and return the event to record, or raise
``RefusedError`` with the OCPI status to answer. Every well-formed PUT is
recorded, an older one too: which version wins is decided when the events
are folded (``projections.mongo.tariffs.apply``; docs/adr/0004 and 0011).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from producers.write_path import Origin, RefusedError
from schemas.events import Party, TariffDeleted, TariffPut, new_event_id
from schemas.events.tariffs import TariffDeletedPayload, TariffPutPayload, TariffRef
from schemas.ocpi.common import fold, parse_ocpi_datetime
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.tariffs import Tariff
from schemas.ocpi.types import to_json

__all__ = [
    "Origin",
    "PlannedTariff",
    "RefusedError",
    "authorize_write",
    "find",
    "is_stale",
    "owner_of",
    "plan_delete",
    "plan_put",
]

Json = dict[str, Any]


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
    exact numbers (``tariffs.loads_exact``); ``current`` the served tariff we
    hold (None if none). Raises ``pydantic.ValidationError`` for a body that
    is not a valid Tariff (OCPI 2001) and ``RefusedError`` otherwise."""
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
    """A DELETE: the tariff must be one we hold (else HTTP 404, OCPI 2000,
    nothing recorded). The deletion is stamped ``now``."""
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
