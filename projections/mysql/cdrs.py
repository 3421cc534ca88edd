"""The MySQL ``cdrs`` table: one row per CDR, kept with the fold of the
MongoDB CDR view (``projections.mongo.cdrs.apply``: the first CDR of a key
stays, ``CdrReconciled`` attaches our price), so both views agree after a
replay. Money, energy and time are DECIMAL, never float.

``CdrRowWriter`` handles a batch in one transaction like the sessions
writer: claim and lock the batch's rows in key order, fold each CDR's
records (the fold skips those at or below the stored positions, which live
in ``state_json``), write the derived columns and the state in one UPDATE
per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    delete,
    select,
)
from sqlalchemy.dialects.mysql import DATETIME, DECIMAL, insert

from projections.mongo import cdrs as cdr_view
from projections.mysql.batches import apply_grouped, upsert
from projections.mysql.hierarchy import utc_naive
from projections.mysql.models import ascii_key, ci_text
from projections.position import Record
from schemas.events import CdrIssued, CdrReceived, CdrReconciled

Row = dict[str, Any]

metadata = MetaData()


# Created by migration 0004_cdrs; declared here for queries.
cdrs = Table(
    "cdrs",
    metadata,
    Column("cdr_key", ascii_key(160), primary_key=True),
    Column("role", ascii_key(8)),
    Column("country_code", ci_text(2)),
    Column("party_id", ci_text(3)),
    Column("cdr_id", ci_text(39)),
    Column("session_id", ci_text(36)),
    Column("token_country_code", ci_text(2)),
    Column("token_party_id", ci_text(3)),
    Column("token_uid", ci_text(36)),
    Column("location_id", ci_text(36)),
    Column("evse_uid", ci_text(36)),
    Column("connector_id", ci_text(36)),
    Column("start_date_time", DATETIME(fsp=3)),
    Column("end_date_time", DATETIME(fsp=3)),
    Column("currency", ascii_key(3)),
    Column("total_energy", DECIMAL(20, 6)),
    Column("total_time", DECIMAL(20, 6)),
    Column("total_cost_excl_vat", DECIMAL(20, 6)),
    Column("total_cost_incl_vat", DECIMAL(20, 6)),
    Column("credit", Boolean),
    Column("credit_reference_id", ci_text(39)),
    Column("expected_excl_vat", DECIMAL(20, 6)),
    Column("difference_excl_vat", DECIMAL(20, 6)),
    Column("discrepancy", Boolean),
    Column("last_updated", DATETIME(fsp=3)),
    Column("state_json", JSON(none_as_null=True)),
)

_COLUMNS = tuple(c.name for c in cdrs.columns if c.name not in ("cdr_key", "state_json"))


def _number(value: Any) -> Decimal | None:
    # JSON numbers come back as int or float (repr: the digits written);
    # reconciliation amounts are decimal strings.
    if value is None:
        return None
    return Decimal(repr(value) if isinstance(value, float) else value)


def cdr_columns(state: Row | None) -> Row:
    """The row's columns for a folded CDR document (None when no CDR). Pure."""
    columns: Row = dict.fromkeys(_COLUMNS)
    if state is None:
        return columns
    result = state.get("reconciliation") or {}
    columns |= {
        "expected_excl_vat": _number(result.get("expected_excl_vat")),
        "difference_excl_vat": _number(result.get("difference")),
        "discrepancy": result.get("discrepancy"),
    }
    cdr = state.get("cdr")
    if cdr is None:
        return columns
    token, where, cost = cdr["cdr_token"], cdr["cdr_location"], cdr["total_cost"]
    return columns | {
        "role": state.get("role"),
        "country_code": cdr["country_code"],
        "party_id": cdr["party_id"],
        "cdr_id": cdr["id"],
        "session_id": cdr.get("session_id"),
        "token_country_code": token["country_code"],
        "token_party_id": token["party_id"],
        "token_uid": token["uid"],
        "location_id": where["id"],
        "evse_uid": where["evse_uid"],
        "connector_id": where["connector_id"],
        "start_date_time": utc_naive(cdr["start_date_time"]),
        "end_date_time": utc_naive(cdr["end_date_time"]),
        "currency": cdr["currency"],
        "total_energy": _number(cdr["total_energy"]),
        "total_time": _number(cdr["total_time"]),
        "total_cost_excl_vat": _number(cost["excl_vat"]),
        "total_cost_incl_vat": _number(cost.get("incl_vat")),
        "credit": bool(cdr.get("credit")),
        "credit_reference_id": cdr.get("credit_reference_id"),
        "last_updated": utc_naive(cdr["last_updated"]),
    }


_READS = (CdrIssued, CdrReceived, CdrReconciled)


def _cdr_key(record: Record[object]) -> str | None:
    event = record.event
    if isinstance(event, _READS):
        return event.aggregate_key
    return None


class CdrRowWriter:
    name = "mysql.cdrs"
    event_types = _READS

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def prepare(self) -> None:
        """The table comes from the Alembic migrations."""

    def wipe(self) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(cdrs))

    def apply(self, records: Sequence[Record[object]]) -> int:
        return apply_grouped(self._engine, self.name, records, _cdr_key, self._apply)

    def _apply(self, conn: Connection, by_key: dict[str, list[Record[object]]]) -> int:
        keys = sorted(by_key)
        claim = insert(cdrs)
        conn.execute(
            claim.on_duplicate_key_update(cdr_key=claim.inserted.cdr_key),
            [{"cdr_key": k, "state_json": None} for k in keys],
        )
        stored = {
            row.cdr_key: row.state_json
            for row in conn.execute(
                select(cdrs.c.cdr_key, cdrs.c.state_json)
                .where(cdrs.c.cdr_key.in_(keys))
                .with_for_update()
            )
        }
        updates: list[Row] = []
        for key in keys:
            before: Row | None = stored[key]
            state = before
            for rec in by_key[key]:
                state = cdr_view.apply(state, rec)
            if state is None or state is before:
                continue
            updates.append({"cdr_key": key, **cdr_columns(state), "state_json": state})
        upsert(conn, cdrs, updates)  # the rows exist: claimed above
        return len(updates)


class CdrRowQuery:
    """Ops reads of the cdrs table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, cdr_key: str) -> Row | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(*(cdrs.c[c] for c in ("cdr_key", *_COLUMNS))).where(
                    cdrs.c.cdr_key == cdr_key
                )
            ).first()
        return None if row is None or row.cdr_id is None else dict(row._mapping)
