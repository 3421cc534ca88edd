"""chargers: one row per EVSE with its resolved status

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
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


def downgrade() -> None:
    op.drop_table("chargers")
