"""Decisions for charger facts: a charger's report in, one event of
``charger.transactions.v1`` out. Pure.

The OCPP gateway (later) and the charger simulator of the ops API (now)
record what our chargers say through ``plan_fact``: the report must be a
valid fact of its kind and name a location, EVSE and connector of ours that
we hold; otherwise ``RefusedError`` (2003) or ``pydantic.ValidationError``
(2001) and nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from producers.write_path import Origin, RefusedError
from schemas.events import (
    MeterValuesSampled,
    ReservationEnded,
    ReservationMade,
    TransactionAuthorized,
    TransactionStarted,
    TransactionStopped,
    new_event_id,
)
from schemas.events.chargers import ChargerEvent
from schemas.ocpi import merge
from schemas.ocpi.sessions import NOT_AVAILABLE
from schemas.ocpi.status_codes import OcpiStatus

FACTS: dict[str, type[ChargerEvent]] = {
    "started": TransactionStarted,
    "authorized": TransactionAuthorized,
    "meter-values": MeterValuesSampled,
    "stopped": TransactionStopped,
    "reservation-made": ReservationMade,
    "reservation-ended": ReservationEnded,
}


def plan_fact(
    kind: str,
    body: Any,
    location: Mapping[str, Any] | None,
    origin: Origin,
    now: datetime,
) -> ChargerEvent:
    """``body`` is the fact's payload without ``country_code``/``party_id``
    (ours, from ``origin``); ``location`` the Location we hold under the id it
    names (None if none)."""
    event_type = FACTS[kind]
    if not isinstance(body, dict):
        raise RefusedError(OcpiStatus.INVALID_PARAMETERS, "the body must be a JSON object")
    ours = {"country_code": origin.source.country_code, "party_id": origin.source.party_id}
    payload_type = event_type.model_fields["payload"].annotation
    assert payload_type is not None
    payload = payload_type.model_validate({**body, **ours})
    if location is None:
        raise RefusedError(OcpiStatus.UNKNOWN_LOCATION, f"unknown location {payload.location_id!r}")
    # A reservation may hold no EVSE or connector yet ("#NA"); a transaction
    # always happens at a connector.
    reservation = event_type in (ReservationMade, ReservationEnded)
    evse_named = not (reservation and payload.evse_uid == NOT_AVAILABLE)
    connector_named = evse_named and not (reservation and payload.connector_id == NOT_AVAILABLE)
    if evse_named and merge.find_evse(location, payload.evse_uid) is None:
        raise RefusedError(OcpiStatus.UNKNOWN_LOCATION, f"unknown EVSE {payload.evse_uid!r}")
    if (
        connector_named
        and merge.find_connector(location, payload.evse_uid, payload.connector_id) is None
    ):
        raise RefusedError(
            OcpiStatus.UNKNOWN_LOCATION, f"unknown connector {payload.connector_id!r}"
        )
    return event_type(
        event_id=new_event_id(),
        aggregate_key=payload.location_key,
        occurred_at=payload.at,
        recorded_at=now,
        source=origin.source,
        correlation_id=origin.correlation_id,
        payload=payload,
    )
