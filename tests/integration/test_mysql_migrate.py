"""Migrations against the real MariaDB: several projections processes at
once (a scaled start: one migrates under the server's named lock, the others
find the schema at head; none fails), and an upgrade of a database that
holds rows."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import Engine, inspect, select, text

from ocpi_hub.bootstrap import create_mysql_database, drop_mysql_database, mysql_engine
from ocpi_hub.settings import Settings
from projections.mysql.migrate import migrate
from projections.mysql.models import evses


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
            assert {"evses", "sessions", "cdrs", "alembic_version"} <= set(
                inspect(engine).get_table_names()
            )
        finally:
            engine.dispose()
    finally:
        drop_mysql_database(services, database)


@pytest.fixture
def fresh(services: Settings) -> Iterator[Engine]:
    database = f"mig{uuid.uuid4().hex[:10]}"
    create_mysql_database(services, database)
    engine = mysql_engine(services, database)
    try:
        yield engine
    finally:
        engine.dispose()
        drop_mysql_database(services, database)


def _index_names(engine: Engine, table: str) -> set[str]:
    return {i["name"] for i in inspect(engine).get_indexes(table) if i["name"]}


def test_upgrading_a_database_with_evse_rows_keeps_them_under_the_new_name(
    fresh: Engine,
) -> None:
    # A database as 0004 left it: EVSE rows in ``chargers``.
    migrate(fresh, "0004_cdrs")
    stamp = datetime(2026, 3, 1, 8, 0, 5, 123000)
    with fresh.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO chargers (evse_key, location_key, space_key, country_code,"
                " party_id, location_id, evse_uid, evse_id, status, capabilities,"
                " parking_restrictions, last_updated) VALUES ('NL/ABC/LOC1/E1',"
                " 'NL/ABC/LOC1', 'NL/ABC/LOC1|UNASSIGNED', 'NL', 'ABC', 'Loc1', 'E1',"
                " 'NL*ABC*E1', 'CHARGING', '[\"RFID_READER\"]', NULL, :stamp)"
            ),
            {"stamp": stamp},
        )
        conn.execute(
            text(
                "INSERT INTO connectors (connector_key, evse_key, location_key, connector_id,"
                " standard, format, power_type, max_voltage, max_amperage, last_updated)"
                " VALUES ('NL/ABC/LOC1/E1/1', 'NL/ABC/LOC1/E1', 'NL/ABC/LOC1', '1',"
                " 'IEC_62196_T2', 'SOCKET', 'AC_3_PHASE', 400, 32, :stamp)"
            ),
            {"stamp": stamp},
        )

    migrate(fresh)

    tables = set(inspect(fresh).get_table_names())
    assert "evses" in tables and "chargers" not in tables
    assert {"billing_corporations", "billing_members", "billing_invoices"} <= tables
    assert "billing_invoice_lines" in tables
    assert {"billing_credit_notes", "billing_credit_note_lines"} <= tables
    with fresh.connect() as conn:
        [row] = conn.execute(select(evses)).mappings().all()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == (
            "0008_credit_notes"
        )
    assert (row["evse_key"], row["evse_id"], row["status"], row["last_updated"]) == (
        "NL/ABC/LOC1/E1",
        "NL*ABC*E1",
        "CHARGING",
        stamp,
    )
    assert row["capabilities"] == ["RFID_READER"]
    assert _index_names(fresh, "evses") == {"ix_evses_building", "ix_evses_status", "ix_evses_site"}
    assert "ix_connectors_evse" in _index_names(fresh, "connectors")
    assert "ix_connectors_charger" not in _index_names(fresh, "connectors")
