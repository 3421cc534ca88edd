"""Bring a MySQL database to the newest schema (Alembic, no ini file).

Several projections processes may start at once (docs/scale-out.md): each
migrates under a named server lock (``GET_LOCK``), so one runs the
migrations and the others find the schema at head afterwards, instead of
creating the same tables at the same time and failing.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text

_MIGRATIONS = Path(__file__).with_name("migrations")
LOCK_WAIT_S = 120


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade to ``revision`` (the newest by default; an older one for tests
    of an upgrade)."""
    # Imported here: every process and command imports this module through
    # the composition root, and only the projections and `ocpi-hub migrate`
    # migrate (Alembic's import is ~0.15 s, and logs its plugins).
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.connect() as locking:
        # The lock is the server's, per name: named after the database.
        name = f"ocpi-hub-migrate:{engine.url.database}"[:64]
        got = locking.execute(
            text("SELECT GET_LOCK(:name, :wait)"), {"name": name, "wait": LOCK_WAIT_S}
        )
        if got.scalar() != 1:
            raise TimeoutError(f"another process held the migration lock {name!r} too long")
        try:
            with engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
        finally:
            locking.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
