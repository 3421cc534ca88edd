"""invoices: the monthly invoices of corporations and their lines (docs/adr/0036)

Revision ID: 0007_invoices
Revises: 0006_billing
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0007_invoices"
down_revision = "0006_billing"
branch_labels = None
depends_on = None


def _key(length: int) -> mysql.VARCHAR:
    return mysql.VARCHAR(length, charset="ascii", collation="ascii_bin")


def _ci(length: int) -> mysql.VARCHAR:
    return mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_general_ci")


def upgrade() -> None:
    op.create_table(
        "billing_invoices",
        sa.Column("invoice_id", _key(19), primary_key=True),
        sa.Column("corporation_id", _key(12), nullable=False),
        sa.Column("month", _key(7), nullable=False),
        sa.Column("status", _key(8), nullable=False),
        sa.Column("number", _key(16), nullable=True),
        sa.Column("buyer_legal_name", _ci(200), nullable=False),
        sa.Column("currency", _key(3), nullable=False),
        sa.Column("period_start", mysql.DATETIME(fsp=3), nullable=False),
        sa.Column("period_end", mysql.DATETIME(fsp=3), nullable=False),
        sa.Column("net_total", mysql.DECIMAL(18, 6), nullable=False),
        sa.Column("vat_total", mysql.DECIMAL(18, 6), nullable=False),
        sa.Column("gross_total", mysql.DECIMAL(18, 6), nullable=False),
        sa.Column("payment_term_days", sa.Integer, nullable=False),
        sa.Column("lines", sa.Integer, nullable=False),
        sa.Column("issue_date", sa.Date, nullable=True),
        sa.Column("due_date", sa.Date, nullable=True),
        sa.Column("paid_on", sa.Date, nullable=True),
        sa.Column("payment_reference", _ci(200), nullable=True),
        sa.Column("void_reason", _ci(500), nullable=True),
        sa.Column("drafted_at", mysql.DATETIME(fsp=3), nullable=False),
        sa.Column("updated_at", mysql.DATETIME(fsp=3), nullable=False),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index("ix_billing_invoices_month", "billing_invoices", ["month", "status"])
    # Unique: a number is given once (NULL while a draft: MySQL allows many).
    op.create_index("ux_billing_invoices_number", "billing_invoices", ["number"], unique=True)
    op.create_table(
        "billing_invoice_lines",
        sa.Column("invoice_id", _key(19), primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", _key(16), nullable=False),
        sa.Column("member_id", _key(12), nullable=False),
        sa.Column("member_name", _ci(200), nullable=False),
        sa.Column("cost_centre", _ci(64), nullable=True),
        sa.Column("sessions", sa.Integer, nullable=False),
        sa.Column("energy_kwh", mysql.DECIMAL(18, 6), nullable=False),
        sa.Column("unit_price", mysql.DECIMAL(18, 6), nullable=False),
        sa.Column("net", mysql.DECIMAL(18, 6), nullable=False),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )


def downgrade() -> None:
    op.drop_table("billing_invoice_lines")
    op.drop_table("billing_invoices")
