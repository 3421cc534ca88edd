"""Locations module objects (OCPI 2.2.1, mod_locations.asciidoc).

Only the part the walking skeleton exchanges is modelled so far: the EVSE
status and its timestamp. Unknown fields are refused rather than dropped.
"""

from __future__ import annotations

from enum import StrEnum

from schemas.ocpi.common import DateTime, OcpiModel, ci_string

LocationId = ci_string(36)  # mod_locations, Location.id: CiString(36)
EvseUid = ci_string(36)  # mod_locations, EVSE.uid: CiString(36)


class EvseStatus(StrEnum):
    """mod_locations, Status enum."""

    AVAILABLE = "AVAILABLE"
    BLOCKED = "BLOCKED"
    CHARGING = "CHARGING"
    INOPERATIVE = "INOPERATIVE"
    OUTOFORDER = "OUTOFORDER"
    PLANNED = "PLANNED"
    REMOVED = "REMOVED"
    RESERVED = "RESERVED"
    UNKNOWN = "UNKNOWN"


class EvseStatusPatch(OcpiModel):
    """The body of ``PATCH .../locations/{cc}/{pid}/{location_id}/{evse_uid}``
    that carries a status change. ``last_updated`` is required on every PATCH
    (transport_and_format, PATCH)."""

    status: EvseStatus
    last_updated: DateTime
