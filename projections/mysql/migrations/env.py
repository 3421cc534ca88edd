"""Alembic environment: run with a connection handed in by ``migrate()``."""

from __future__ import annotations

from alembic import context

from projections.mysql.models import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
