"""The MySQL ``sessions`` table: one row per OCPI Session, kept by folding
the session's events (``producers.sessions.evolve``), and its ops read.

``SessionRowWriter`` handles a batch in one transaction, like the hierarchy
writer (projections/mysql/sites.py): claim and lock the batch's rows in key
order, fold each session's records skipping those at or below the stored
position, write the derived columns, the folded session and the positions in
one UPDATE per row. Re-delivery changes nothing; a concurrent writer waits
for our commit and folds from what we wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    delete,
    select,
)
from sqlalchemy.dialects.mysql import DATETIME, DECIMAL, insert

from producers.sessions import evolve
from projections.mysql.batches import apply_grouped, upsert
from projections.mysql.hierarchy import utc_naive
from projections.mysql.models import ascii_key, ci_text
from projections.position import Record, already_applied
from schemas.events import SessionPatched, SessionPut

Row = dict[str, Any]

metadata = MetaData()


# Created by migration 0003_sessions; declared here for queries.
sessions = Table(
    "sessions",
    metadata,
    Column("session_key", ascii_key(160), primary_key=True),
    Column("country_code", ci_text(2)),
    Column("party_id", ci_text(3)),
    Column("session_id", ci_text(36)),
    Column("status", ascii_key(16)),
    Column("location_id", ci_text(36)),
    Column("evse_uid", ci_text(36)),
    Column("connector_id", ci_text(36)),
    Column("token_uid", ci_text(36)),
    Column("start_date_time", DATETIME(fsp=3)),
    Column("end_date_time", DATETIME(fsp=3)),
    Column("kwh", DECIMAL(20, 6)),
    Column("currency", ascii_key(3)),
    Column("total_cost_excl_vat", DECIMAL(20, 6)),
    Column("total_cost_incl_vat", DECIMAL(20, 6)),
    Column("last_updated", DATETIME(fsp=3)),
    Column("session_json", JSON(none_as_null=True)),
    Column("positions_json", JSON, nullable=False),
)

_COLUMNS = (
    "country_code",
    "party_id",
    "session_id",
    "status",
    "location_id",
    "evse_uid",
    "connector_id",
    "token_uid",
    "start_date_time",
    "end_date_time",
    "kwh",
    "currency",
    "total_cost_excl_vat",
    "total_cost_incl_vat",
    "last_updated",
)


def _number(value: Any) -> Decimal | None:
    # JSON numbers come back as int or float; repr gives the shortest digits
    # that were written (schemas.ocpi.tariffs, "Exact writing").
    return None if value is None else Decimal(repr(value) if isinstance(value, float) else value)


def session_columns(session: Row | None) -> Row:
    """The row's columns for a served session (all None when none). Pure."""
    if session is None:
        return dict.fromkeys(_COLUMNS)
    cost = session.get("total_cost") or {}
    end = session.get("end_date_time")
    return {
        "country_code": session["country_code"],
        "party_id": session["party_id"],
        "session_id": session["id"],
        "status": session["status"],
        "location_id": session["location_id"],
        "evse_uid": session["evse_uid"],
        "connector_id": session["connector_id"],
        "token_uid": session["cdr_token"]["uid"],
        "start_date_time": utc_naive(session["start_date_time"]),
        "end_date_time": utc_naive(end) if end else None,
        "kwh": _number(session["kwh"]),
        "currency": session["currency"],
        "total_cost_excl_vat": _number(cost.get("excl_vat")),
        "total_cost_incl_vat": _number(cost.get("incl_vat")),
        "last_updated": utc_naive(session["last_updated"]),
    }


_READS = (SessionPut, SessionPatched)


def _session_key(record: Record[object]) -> str | None:
    event = record.event
    if isinstance(event, _READS):
        return event.aggregate_key
    return None


class SessionRowWriter:
    name = "mysql.sessions"
    event_types = _READS

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def prepare(self) -> None:
        """The table comes from the Alembic migrations."""

    def wipe(self) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(sessions))

    def apply(self, records: Sequence[Record[object]]) -> int:
        return apply_grouped(self._engine, self.name, records, _session_key, self._apply)

    def _apply(self, conn: Connection, by_key: dict[str, list[Record[object]]]) -> int:
        keys = sorted(by_key)
        claim = insert(sessions)
        conn.execute(
            claim.on_duplicate_key_update(session_key=claim.inserted.session_key),
            [{"session_key": k, "session_json": None, "positions_json": {}} for k in keys],
        )
        stored = {
            row.session_key: row
            for row in conn.execute(
                select(sessions.c.session_key, sessions.c.session_json, sessions.c.positions_json)
                .where(sessions.c.session_key.in_(keys))
                .with_for_update()
            )
        }
        updates: list[Row] = []
        for key in keys:
            row = stored[key]
            session: Row | None = row.session_json
            positions: dict[str, int] = dict(row.positions_json or {})
            applied = 0
            for rec in by_key[key]:
                if already_applied(positions, rec):
                    continue
                session = evolve(session, rec.event)
                positions[rec.position_field] = rec.offset
                applied += 1
            if not applied:
                continue
            columns = session_columns(session)
            updates.append(
                {
                    "session_key": key,
                    **columns,
                    "session_json": session,
                    "positions_json": positions,
                }
            )
        upsert(conn, sessions, updates)  # the rows exist: claimed above
        return len(updates)


class SessionRowQuery:
    """Ops reads of the sessions table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, session_key: str) -> Row | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(*(sessions.c[c] for c in ("session_key", *_COLUMNS))).where(
                    sessions.c.session_key == session_key
                )
            ).first()
        return None if row is None or row.session_id is None else dict(row._mapping)
