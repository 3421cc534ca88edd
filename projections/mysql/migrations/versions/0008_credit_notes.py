"""credit notes: refunds of invoices, their lines, and the invoices' credited totals (docs/adr/0041)

Revision ID: 0008_credit_notes
Revises: 0007_invoices
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0008_credit_notes"
down_revision = "0007_invoices"
branch_labels = None
depends_on = None


def _key(length: int) -> mysql.VARCHAR:
    return mysql.VARCHAR(length, charset="ascii", collation="ascii_bin")


def _ci(length: int) -> mysql.VARCHAR:
    return mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_general_ci")


def _money(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, mysql.DECIMAL(18, 6), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "billing_credit_notes",
        sa.Column("credit_note_id", _key(30), primary_key=True),
        sa.Column("corporation_id", _key(12), nullable=False),
        sa.Column("invoice_id", _key(19), nullable=False),
        sa.Column("invoice_number", _key(16), nullable=False),
        sa.Column("invoice_issue_date", sa.Date, nullable=False),
        sa.Column("status", _key(16), nullable=False),
        sa.Column("number", _key(20), nullable=True),
        sa.Column("currency", _key(3), nullable=False),
        sa.Column("reason", _ci(500), nullable=False),
        sa.Column("lines", sa.Integer, nullable=False),
        _money("net_total"),
        _money("vat_rate", nullable=True),
        _money("vat_total", nullable=True),
        _money("gross_total", nullable=True),
        sa.Column("settles_invoice", sa.Boolean, nullable=True),
        sa.Column("issue_date", sa.Date, nullable=True),
        sa.Column("due_date", sa.Date, nullable=True),
        sa.Column("requested_by", _ci(120), nullable=True),
        sa.Column("requested_at", mysql.DATETIME(fsp=3), nullable=False),
        sa.Column("decided_by", _ci(120), nullable=True),
        sa.Column("decided_at", mysql.DATETIME(fsp=3), nullable=True),
        sa.Column("reject_reason", _ci(500), nullable=True),
        sa.Column("updated_at", mysql.DATETIME(fsp=3), nullable=False),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index(
        "ix_billing_credit_notes_corporation", "billing_credit_notes", ["corporation_id", "status"]
    )
    op.create_index("ix_billing_credit_notes_invoice", "billing_credit_notes", ["invoice_id"])
    op.create_index("ix_billing_credit_notes_status", "billing_credit_notes", ["status"])
    # A number is given once (NULL until issued: MySQL allows many).
    op.create_index(
        "ux_billing_credit_notes_number", "billing_credit_notes", ["number"], unique=True
    )
    op.create_table(
        "billing_credit_note_lines",
        sa.Column("credit_note_id", _key(30), primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", _key(16), nullable=False),
        sa.Column("description", _ci(300), nullable=False),
        sa.Column("cdr_key", _key(160), nullable=True),
        sa.Column("member_id", _key(12), nullable=True),
        sa.Column("member_name", _ci(200), nullable=True),
        sa.Column("cost_centre", _ci(64), nullable=True),
        _money("energy_kwh"),
        _money("unit_price"),
        _money("net"),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    # What an invoice's issued credit notes credited (the invoice itself is
    # never changed; its row shows these beside its own totals).
    for name in ("credited_net", "credited_vat", "credited_gross"):
        op.add_column(
            "billing_invoices",
            sa.Column(name, mysql.DECIMAL(18, 6), nullable=False, server_default="0"),
        )


def downgrade() -> None:
    for name in ("credited_gross", "credited_vat", "credited_net"):
        op.drop_column("billing_invoices", name)
    op.drop_table("billing_credit_note_lines")
    op.drop_table("billing_credit_notes")
