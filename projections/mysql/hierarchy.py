"""The operational hierarchy of one location: building → space → EVSE →
connector, as MySQL rows. Pure: no I/O, no clock.

The input is the OCPI Location we serve (``producers.locations.served``), so PUT
versus PATCH, stale updates and resolved statuses have been decided before
this module sees anything; it only maps fields (docs/adr/0007):

* building: the Location itself;
* space: where EVSEs stand, one per distinct (``floor_level``,
  ``physical_reference``) of the location's EVSEs; EVSEs with neither share
  the location's *unassigned* space;
* EVSE: one OCPI EVSE, with the status we show;
* connector: one Connector of an EVSE.

Keys are upper-folded like the event keys (CiString identifiers compare
case-insensitively); every other value is stored as received. Timestamps are
naive UTC, the form a ``DATETIME`` column holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from schemas.ocpi.common import fold, parse_ocpi_datetime

Json = dict[str, Any]
Row = dict[str, Any]

UNASSIGNED = "UNASSIGNED"


@dataclass(frozen=True)
class HierarchyRows:
    """Every row one location contributes to the four tables."""

    buildings: list[Row] = field(default_factory=list)
    spaces: list[Row] = field(default_factory=list)
    evses: list[Row] = field(default_factory=list)
    connectors: list[Row] = field(default_factory=list)


def space_key(location_key: str, floor_level: str | None, physical_reference: str | None) -> str:
    """The key of the space an EVSE stands in.

    ``floor_level`` and ``physical_reference`` are case-sensitive strings (not
    CiStrings), so they are kept as they are, percent-encoded so that no value
    can forge the ``|`` separator. Without either, the EVSE is in the
    location's unassigned space, whose key has no second separator and so
    cannot collide with an assigned one.
    """
    floor, reference = floor_level or "", physical_reference or ""
    if not floor and not reference:
        return f"{location_key}|{UNASSIGNED}"
    return f"{location_key}|{quote(floor, safe='')}|{quote(reference, safe='')}"


def utc_naive(value: str) -> datetime:
    """An OCPI DateTime as the naive UTC value of a ``DATETIME(3)`` column."""
    return parse_ocpi_datetime(value).astimezone(UTC).replace(tzinfo=None)


def hierarchy_rows(location_key: str, location: Json | None) -> HierarchyRows:
    """The rows of one served location; none when nothing is asserted yet
    (only resolved statuses are known: nothing to show)."""
    if location is None:
        return HierarchyRows()
    owner = {
        "country_code": location["country_code"],
        "party_id": location["party_id"],
        "location_id": location["id"],
    }
    coordinates = location["coordinates"]
    building = {
        "location_key": location_key,
        **owner,
        "name": location.get("name"),
        "address": location["address"],
        "city": location["city"],
        "postal_code": location.get("postal_code"),
        "country": location["country"],
        "latitude": Decimal(coordinates["latitude"]),
        "longitude": Decimal(coordinates["longitude"]),
        "time_zone": location["time_zone"],
        "publish": bool(location["publish"]),
        "last_updated": utc_naive(location["last_updated"]),
    }
    rows = HierarchyRows(buildings=[building])
    spaces: dict[str, Row] = {}
    for evse in location.get("evses") or ():
        floor, reference = evse.get("floor_level"), evse.get("physical_reference")
        space = space_key(location_key, floor, reference)
        if space not in spaces:
            # An empty string says no more than an absent field (see space_key).
            spaces[space] = {
                "space_key": space,
                "location_key": location_key,
                "floor_level": floor or None,
                "physical_reference": reference or None,
            }
        evse_key = f"{location_key}/{fold(evse['uid'])}"
        rows.evses.append(
            {
                "evse_key": evse_key,
                "location_key": location_key,
                "space_key": space,
                **owner,
                "evse_uid": evse["uid"],
                "evse_id": evse.get("evse_id"),
                "status": evse["status"],
                "capabilities": evse.get("capabilities"),
                "parking_restrictions": evse.get("parking_restrictions"),
                "last_updated": utc_naive(evse["last_updated"]),
            }
        )
        for connector in evse.get("connectors") or ():
            rows.connectors.append(
                {
                    "connector_key": f"{evse_key}/{fold(connector['id'])}",
                    "evse_key": evse_key,
                    "location_key": location_key,
                    "connector_id": connector["id"],
                    "standard": connector["standard"],
                    "format": connector["format"],
                    "power_type": connector["power_type"],
                    "max_voltage": connector["max_voltage"],
                    "max_amperage": connector["max_amperage"],
                    "max_electric_power": connector.get("max_electric_power"),
                    "last_updated": utc_naive(connector["last_updated"]),
                }
            )
    rows.spaces.extend(spaces.values())
    return rows
