"""billing: corporations, their members and charges (issue 14, docs/adr/0035)

Money and rates are DECIMAL; ``state_json`` keeps the folded corporation
(producers/billing.py) and the offset of its last event applied.

Revision ID: 0006_billing
Revises: 0005_evses
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0006_billing"
down_revision = "0005_evses"
branch_labels = None
depends_on = None


def _key(length: int) -> mysql.VARCHAR:
    return mysql.VARCHAR(length, charset="ascii", collation="ascii_bin")


def _ci(length: int) -> mysql.VARCHAR:
    return mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_general_ci")


def upgrade() -> None:
    op.create_table(
        "billing_corporations",
        sa.Column("corporation_id", _key(12), primary_key=True),
        sa.Column("legal_name", _ci(200), nullable=True),
        sa.Column("country", _key(2), nullable=True),
        sa.Column("registration_number", _ci(40), nullable=True),
        sa.Column("vat_id", _ci(40), nullable=True),
        sa.Column("billing_email", _ci(254), nullable=True),
        sa.Column("billing_street", _ci(200), nullable=True),
        sa.Column("billing_postal_code", _ci(20), nullable=True),
        sa.Column("billing_city", _ci(200), nullable=True),
        sa.Column("billing_country", _key(2), nullable=True),
        sa.Column("currency", _key(3), nullable=True),
        sa.Column("payment_method", _key(32), nullable=True),
        sa.Column("price_per_kwh", mysql.DECIMAL(18, 6), nullable=True),
        sa.Column("monthly_fee_per_member", mysql.DECIMAL(18, 6), nullable=True),
        sa.Column("vat_rate", mysql.DECIMAL(18, 6), nullable=True),
        sa.Column("payment_term_days", sa.Integer, nullable=True),
        sa.Column("status", _key(16), nullable=True),
        sa.Column("status_reason", _ci(500), nullable=True),
        sa.Column("registered_at", mysql.DATETIME(fsp=3), nullable=True),
        sa.Column("updated_at", mysql.DATETIME(fsp=3), nullable=True),
        sa.Column("state_json", sa.JSON, nullable=True),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("ix_billing_corporations_status", "billing_corporations", ["status"])
    op.create_table(
        "billing_members",
        sa.Column("corporation_id", _key(12), primary_key=True),
        sa.Column("member_id", _key(12), primary_key=True),
        sa.Column("name", _ci(200), nullable=False),
        sa.Column("email", _ci(254), nullable=False),
        sa.Column("cost_centre", _ci(64), nullable=True),
        sa.Column("status", _key(16), nullable=False),
        sa.Column("invitation_expires_at", mysql.DATETIME(fsp=3), nullable=False),
        sa.Column("invitation_mailed", sa.Boolean, nullable=False),
        sa.Column("token_uid", _ci(36), nullable=True),
        sa.Column("token_type", _key(16), nullable=True),
        sa.Column("invited_at", mysql.DATETIME(fsp=3), nullable=False),
        sa.Column("activated_at", mysql.DATETIME(fsp=3), nullable=True),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("ix_billing_members_token", "billing_members", ["token_uid", "token_type"])
    op.create_table(
        "billing_charges",
        sa.Column("cdr_key", _key(160), primary_key=True),
        sa.Column("corporation_id", _key(12), nullable=False),
        sa.Column("member_id", _key(12), nullable=False),
        sa.Column("cost_centre", _ci(64), nullable=True),
        sa.Column("role", _key(8), nullable=False),
        sa.Column("token_uid", _ci(36), nullable=False),
        sa.Column("token_type", _key(16), nullable=False),
        sa.Column("start_date_time", mysql.DATETIME(fsp=3), nullable=False),
        sa.Column("end_date_time", mysql.DATETIME(fsp=3), nullable=False),
        sa.Column("energy_kwh", mysql.DECIMAL(18, 6), nullable=False),
        sa.Column("price_per_kwh", mysql.DECIMAL(18, 6), nullable=False),
        sa.Column("amount", mysql.DECIMAL(18, 6), nullable=False),
        sa.Column("currency", _key(3), nullable=False),
        sa.Column("cdr_cost_excl_vat", mysql.DECIMAL(18, 6), nullable=True),
        sa.Column("reversed_by", _key(160), nullable=True),
        sa.Column("reversal_amount", mysql.DECIMAL(18, 6), nullable=True),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index(
        "ix_billing_charges_corporation", "billing_charges", ["corporation_id", "end_date_time"]
    )


def downgrade() -> None:
    op.drop_table("billing_charges")
    op.drop_table("billing_members")
    op.drop_table("billing_corporations")
