"""hierarchy: location_states, buildings, spaces, chargers (reshaped), connectors

The old ``chargers`` rows were built from resolved statuses alone and held
their own offset guard; the new ones are derived from each location's folded
state (docs/adr/0007). Views are rebuilt by replay, so the table is dropped
and created again rather than altered.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _key(length: int) -> mysql.VARCHAR:
    return mysql.VARCHAR(length, charset="ascii", collation="ascii_bin")


def _ci(length: int) -> mysql.VARCHAR:
    return mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_general_ci")


def _text(length: int) -> mysql.VARCHAR:
    return mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin")


def _stamp() -> mysql.DATETIME:
    return mysql.DATETIME(fsp=3)


def upgrade() -> None:
    op.drop_table("chargers")
    op.create_table(
        "location_states",
        sa.Column("location_key", _key(160), primary_key=True),
        sa.Column("state_json", sa.JSON, nullable=True),
        sa.Column("positions_json", sa.JSON, nullable=False),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "buildings",
        sa.Column("location_key", _key(160), primary_key=True),
        sa.Column("country_code", _ci(2), nullable=False),
        sa.Column("party_id", _ci(3), nullable=False),
        sa.Column("location_id", _ci(36), nullable=False),
        sa.Column("name", _text(255), nullable=True),
        sa.Column("address", _text(255), nullable=False),
        sa.Column("city", _text(45), nullable=False),
        sa.Column("postal_code", _text(10), nullable=True),
        sa.Column("country", _text(3), nullable=False),
        sa.Column("latitude", mysql.DECIMAL(9, 7), nullable=False),
        sa.Column("longitude", mysql.DECIMAL(10, 7), nullable=False),
        sa.Column("time_zone", _text(255), nullable=False),
        sa.Column("publish", sa.Boolean, nullable=False),
        sa.Column("last_updated", _stamp(), nullable=False),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("ix_buildings_owner", "buildings", ["country_code", "party_id"])
    op.create_table(
        "spaces",
        sa.Column("space_key", _key(320), primary_key=True),
        sa.Column("location_key", _key(160), nullable=False),
        sa.Column("floor_level", _text(4), nullable=True),
        sa.Column("physical_reference", _text(16), nullable=True),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("ix_spaces_building", "spaces", ["location_key"])
    op.create_table(
        "chargers",
        sa.Column("evse_key", _key(200), primary_key=True),
        sa.Column("location_key", _key(160), nullable=False),
        sa.Column("space_key", _key(320), nullable=False),
        sa.Column("country_code", _ci(2), nullable=False),
        sa.Column("party_id", _ci(3), nullable=False),
        sa.Column("location_id", _ci(36), nullable=False),
        sa.Column("evse_uid", _ci(36), nullable=False),
        sa.Column("evse_id", _ci(48), nullable=True),
        sa.Column("status", _key(16), nullable=False),
        sa.Column("capabilities", sa.JSON, nullable=True),
        sa.Column("parking_restrictions", sa.JSON, nullable=True),
        sa.Column("last_updated", _stamp(), nullable=False),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("ix_chargers_building", "chargers", ["location_key"])
    op.create_index("ix_chargers_status", "chargers", ["status"])
    op.create_index("ix_chargers_site", "chargers", ["country_code", "party_id", "location_id"])
    op.create_table(
        "connectors",
        sa.Column("connector_key", _key(240), primary_key=True),
        sa.Column("evse_key", _key(200), nullable=False),
        sa.Column("location_key", _key(160), nullable=False),
        sa.Column("connector_id", _ci(36), nullable=False),
        sa.Column("standard", _key(32), nullable=False),
        sa.Column("format", _key(16), nullable=False),
        sa.Column("power_type", _key(16), nullable=False),
        sa.Column("max_voltage", sa.Integer, nullable=False),
        sa.Column("max_amperage", sa.Integer, nullable=False),
        sa.Column("max_electric_power", sa.Integer, nullable=True),
        sa.Column("last_updated", _stamp(), nullable=False),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("ix_connectors_charger", "connectors", ["evse_key"])
    op.create_index("ix_connectors_building", "connectors", ["location_key"])


def downgrade() -> None:
    for table in ("connectors", "chargers", "spaces", "buildings", "location_states"):
        op.drop_table(table)
    op.create_table(
        "chargers",
        sa.Column("evse_key", sa.String(160), primary_key=True),
        sa.Column("country_code", sa.String(2), nullable=False),
        sa.Column("party_id", sa.String(3), nullable=False),
        sa.Column("location_id", sa.String(36), nullable=False),
        sa.Column("evse_uid", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_last_updated", mysql.DATETIME(fsp=3), nullable=False),
        sa.Column("status_offset", sa.BigInteger, nullable=False),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("ix_chargers_status", "chargers", ["status"])
    op.create_index("ix_chargers_site", "chargers", ["country_code", "party_id", "location_id"])
