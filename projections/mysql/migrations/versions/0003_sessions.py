"""sessions: one row per OCPI Session (ours and our partners')

kWh and money are DECIMAL; ``session_json`` keeps the served session (the
fold's state) and ``positions_json`` the position guard.

Revision ID: 0003_sessions
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003_sessions"
down_revision = "0002"
branch_labels = None
depends_on = None


def _key(length: int) -> mysql.VARCHAR:
    return mysql.VARCHAR(length, charset="ascii", collation="ascii_bin")


def _ci(length: int) -> mysql.VARCHAR:
    return mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_general_ci")


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("session_key", _key(160), primary_key=True),
        sa.Column("country_code", _ci(2), nullable=True),
        sa.Column("party_id", _ci(3), nullable=True),
        sa.Column("session_id", _ci(36), nullable=True),
        sa.Column("status", _key(16), nullable=True),
        sa.Column("location_id", _ci(36), nullable=True),
        sa.Column("evse_uid", _ci(36), nullable=True),
        sa.Column("connector_id", _ci(36), nullable=True),
        sa.Column("token_uid", _ci(36), nullable=True),
        sa.Column("start_date_time", mysql.DATETIME(fsp=3), nullable=True),
        sa.Column("end_date_time", mysql.DATETIME(fsp=3), nullable=True),
        sa.Column("kwh", mysql.DECIMAL(20, 6), nullable=True),
        sa.Column("currency", _key(3), nullable=True),
        sa.Column("total_cost_excl_vat", mysql.DECIMAL(20, 6), nullable=True),
        sa.Column("total_cost_incl_vat", mysql.DECIMAL(20, 6), nullable=True),
        sa.Column("last_updated", mysql.DATETIME(fsp=3), nullable=True),
        sa.Column("session_json", sa.JSON, nullable=True),
        sa.Column("positions_json", sa.JSON, nullable=False),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("ix_sessions_owner", "sessions", ["country_code", "party_id", "last_updated"])
    op.create_index("ix_sessions_location", "sessions", ["country_code", "party_id", "location_id"])
    op.create_index("ix_sessions_status", "sessions", ["status"])


def downgrade() -> None:
    op.drop_table("sessions")
