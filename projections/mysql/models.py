"""The operational MySQL schema (SQLAlchemy Core tables).

Changed only through Alembic migrations under ``migrations/versions``.

The hierarchy building → space → EVSE → connector is derived from each
location's folded state, kept in ``location_states`` with the Kafka
positions applied to it (docs/adr/0007). Keys are upper-folded ASCII and
compare byte for byte (``ascii_bin``); the owner columns kept for filters
compare case-insensitively, as CiStrings do.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Index, Integer, MetaData, Table
from sqlalchemy.dialects.mysql import DATETIME, DECIMAL, VARCHAR

metadata = MetaData()


def ascii_key(length: int) -> VARCHAR:
    return VARCHAR(length, charset="ascii", collation="ascii_bin")


def ci_text(length: int) -> VARCHAR:
    return VARCHAR(length, charset="utf8mb4", collation="utf8mb4_general_ci")


def _text(length: int) -> VARCHAR:
    return VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin")


def _stamp() -> DATETIME:
    return DATETIME(fsp=3)  # UTC, naive


location_states = Table(
    "location_states",
    metadata,
    # The fold state of one location (producers.locations.LocationState) and the
    # position guard: per topic partition, the last offset applied to it.
    # A row exists as soon as any event about the location is applied; its
    # building exists only once the owner has asserted the location.
    Column("location_key", ascii_key(160), primary_key=True),
    Column("state_json", JSON(none_as_null=True), nullable=True),
    Column("positions_json", JSON, nullable=False),
    mysql_charset="utf8mb4",
    mysql_engine="InnoDB",
)

buildings = Table(
    "buildings",
    metadata,
    # One OCPI Location.
    Column("location_key", ascii_key(160), primary_key=True),
    Column("country_code", ci_text(2), nullable=False),
    Column("party_id", ci_text(3), nullable=False),
    Column("location_id", ci_text(36), nullable=False),
    Column("name", _text(255), nullable=True),
    Column("address", _text(255), nullable=False),
    Column("city", _text(45), nullable=False),
    Column("postal_code", _text(10), nullable=True),
    Column("country", _text(3), nullable=False),
    Column("latitude", DECIMAL(9, 7), nullable=False),
    Column("longitude", DECIMAL(10, 7), nullable=False),
    Column("time_zone", _text(255), nullable=False),
    Column("publish", Boolean, nullable=False),
    Column("last_updated", _stamp(), nullable=False),
    Index("ix_buildings_owner", "country_code", "party_id"),
    mysql_charset="utf8mb4",
    mysql_engine="InnoDB",
)

spaces = Table(
    "spaces",
    metadata,
    # Where EVSEs stand: one per (floor_level, physical_reference) of a
    # location, or the location's unassigned space (both NULL).
    Column("space_key", ascii_key(320), primary_key=True),
    Column("location_key", ascii_key(160), nullable=False),
    Column("floor_level", _text(4), nullable=True),
    Column("physical_reference", _text(16), nullable=True),
    Index("ix_spaces_building", "location_key"),
    mysql_charset="utf8mb4",
    mysql_engine="InnoDB",
)

evses = Table(
    "evses",
    metadata,
    # One OCPI EVSE, keyed like the events (a charger, the OCPP station, may
    # serve several: docs/glossary.md).
    Column("evse_key", ascii_key(200), primary_key=True),
    Column("location_key", ascii_key(160), nullable=False),
    Column("space_key", ascii_key(320), nullable=False),
    Column("country_code", ci_text(2), nullable=False),
    Column("party_id", ci_text(3), nullable=False),
    Column("location_id", ci_text(36), nullable=False),
    Column("evse_uid", ci_text(36), nullable=False),
    Column("evse_id", ci_text(48), nullable=True),
    Column("status", ascii_key(16), nullable=False),
    Column("capabilities", JSON, nullable=True),
    Column("parking_restrictions", JSON, nullable=True),
    # The EVSE's last_updated as served; a status change always moves it.
    Column("last_updated", _stamp(), nullable=False),
    Index("ix_evses_building", "location_key"),
    Index("ix_evses_status", "status"),
    Index("ix_evses_site", "country_code", "party_id", "location_id"),
    mysql_charset="utf8mb4",
    mysql_engine="InnoDB",
)

connectors = Table(
    "connectors",
    metadata,
    Column("connector_key", ascii_key(240), primary_key=True),
    Column("evse_key", ascii_key(200), nullable=False),
    Column("location_key", ascii_key(160), nullable=False),
    Column("connector_id", ci_text(36), nullable=False),
    Column("standard", ascii_key(32), nullable=False),
    Column("format", ascii_key(16), nullable=False),
    Column("power_type", ascii_key(16), nullable=False),
    Column("max_voltage", Integer, nullable=False),
    Column("max_amperage", Integer, nullable=False),
    Column("max_electric_power", Integer, nullable=True),
    Column("last_updated", _stamp(), nullable=False),
    Index("ix_connectors_evse", "evse_key"),
    Index("ix_connectors_building", "location_key"),
    mysql_charset="utf8mb4",
    mysql_engine="InnoDB",
)

# The derived tables, children first (the order to delete in).
HIERARCHY = (connectors, evses, spaces, buildings)
