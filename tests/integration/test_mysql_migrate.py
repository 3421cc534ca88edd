"""Migrations run by several projections processes at once (a scaled start):
one migrates under the server's named lock, the others find the schema at
head; none fails."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import inspect

from ocpi_hub.bootstrap import create_mysql_database, drop_mysql_database, mysql_engine
from ocpi_hub.settings import Settings
from projections.mysql.migrate import migrate


def test_four_processes_migrating_one_fresh_database_at_once(services: Settings) -> None:
    database = f"mig{uuid.uuid4().hex[:10]}"
    create_mysql_database(services, database)
    try:
        failures: list[str] = []

        def start() -> None:
            engine = mysql_engine(services, database)
            try:
                migrate(engine)
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}"[:200])
            finally:
                engine.dispose()

        starts = [threading.Thread(target=start) for _ in range(4)]
        for thread in starts:
            thread.start()
        for thread in starts:
            thread.join()
        assert failures == []
        engine = mysql_engine(services, database)
        try:
            assert {"chargers", "sessions", "cdrs", "alembic_version"} <= set(
                inspect(engine).get_table_names()
            )
        finally:
            engine.dispose()
    finally:
        drop_mysql_database(services, database)
