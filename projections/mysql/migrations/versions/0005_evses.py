"""evses: the table of EVSE rows, named for what it holds

``chargers`` held one row per OCPI EVSE, while "charger" means the physical
OCPP station everywhere else (docs/glossary.md). The table and its indexes
are renamed in place, rows kept: a rename is a metadata change, so no
replay is needed for it.

Revision ID: 0005_evses
Revises: 0004_cdrs
"""

from alembic import op

revision = "0005_evses"
down_revision = "0004_cdrs"
branch_labels = None
depends_on = None

# (table after the rename, old index name, new index name)
_INDEXES = (
    ("evses", "ix_chargers_building", "ix_evses_building"),
    ("evses", "ix_chargers_status", "ix_evses_status"),
    ("evses", "ix_chargers_site", "ix_evses_site"),
    ("connectors", "ix_connectors_charger", "ix_connectors_evse"),
)


def upgrade() -> None:
    op.rename_table("chargers", "evses")
    for table, old, new in _INDEXES:
        # MariaDB >= 10.5.2 and MySQL >= 5.7: no rebuild, unlike drop + create.
        op.execute(f"ALTER TABLE {table} RENAME INDEX {old} TO {new}")


def downgrade() -> None:
    for table, old, new in _INDEXES:
        op.execute(f"ALTER TABLE {table} RENAME INDEX {new} TO {old}")
    op.rename_table("evses", "chargers")
