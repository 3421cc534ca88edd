"""cdrs: one row per CDR (ours issued and partners' received)

Energy, time and money are DECIMAL; ``state_json`` keeps the folded CDR
document (the fold of projections/mongo/cdrs.py, positions included).

Revision ID: 0004_cdrs
Revises: 0003_sessions
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004_cdrs"
down_revision = "0003_sessions"
branch_labels = None
depends_on = None


def _key(length: int) -> mysql.VARCHAR:
    return mysql.VARCHAR(length, charset="ascii", collation="ascii_bin")


def _ci(length: int) -> mysql.VARCHAR:
    return mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_general_ci")


def upgrade() -> None:
    op.create_table(
        "cdrs",
        sa.Column("cdr_key", _key(160), primary_key=True),
        sa.Column("role", _key(8), nullable=True),
        sa.Column("country_code", _ci(2), nullable=True),
        sa.Column("party_id", _ci(3), nullable=True),
        sa.Column("cdr_id", _ci(39), nullable=True),
        sa.Column("session_id", _ci(36), nullable=True),
        sa.Column("token_country_code", _ci(2), nullable=True),
        sa.Column("token_party_id", _ci(3), nullable=True),
        sa.Column("token_uid", _ci(36), nullable=True),
        sa.Column("location_id", _ci(36), nullable=True),
        sa.Column("evse_uid", _ci(36), nullable=True),
        sa.Column("connector_id", _ci(36), nullable=True),
        sa.Column("start_date_time", mysql.DATETIME(fsp=3), nullable=True),
        sa.Column("end_date_time", mysql.DATETIME(fsp=3), nullable=True),
        sa.Column("currency", _key(3), nullable=True),
        sa.Column("total_energy", mysql.DECIMAL(20, 6), nullable=True),
        sa.Column("total_time", mysql.DECIMAL(20, 6), nullable=True),
        sa.Column("total_cost_excl_vat", mysql.DECIMAL(20, 6), nullable=True),
        sa.Column("total_cost_incl_vat", mysql.DECIMAL(20, 6), nullable=True),
        sa.Column("credit", sa.Boolean, nullable=True),
        sa.Column("credit_reference_id", _ci(39), nullable=True),
        sa.Column("expected_excl_vat", mysql.DECIMAL(20, 6), nullable=True),
        sa.Column("difference_excl_vat", mysql.DECIMAL(20, 6), nullable=True),
        sa.Column("discrepancy", sa.Boolean, nullable=True),
        sa.Column("last_updated", mysql.DATETIME(fsp=3), nullable=True),
        sa.Column("state_json", sa.JSON, nullable=True),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("ix_cdrs_owner", "cdrs", ["country_code", "party_id", "last_updated"])
    op.create_index("ix_cdrs_discrepancy", "cdrs", ["role", "discrepancy"])


def downgrade() -> None:
    op.drop_table("cdrs")
