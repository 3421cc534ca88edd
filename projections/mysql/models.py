"""The operational MySQL schema (SQLAlchemy Core tables).

Changed only through Alembic migrations under ``migrations/versions``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table
from sqlalchemy.dialects.mysql import DATETIME

metadata = MetaData()

chargers = Table(
    "chargers",
    metadata,
    # One row per EVSE ("charger" in operational terms), keyed like the events.
    Column("evse_key", String(160), primary_key=True),
    Column("country_code", String(2), nullable=False),
    Column("party_id", String(3), nullable=False),
    Column("location_id", String(36), nullable=False),
    Column("evse_uid", String(36), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_last_updated", DATETIME(fsp=3), nullable=False),  # UTC
    # Guard: the ocpi.evse-status.v1 offset last applied to this row.
    Column("status_offset", BigInteger, nullable=False),
    Index("ix_chargers_status", "status"),
    Index("ix_chargers_site", "country_code", "party_id", "location_id"),
    mysql_charset="utf8mb4",
    mysql_engine="InnoDB",
)
