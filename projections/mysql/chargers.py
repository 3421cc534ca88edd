"""MySQL ``chargers`` rows from resolved EVSE statuses.

One guarded upsert per EVSE and batch: the row changes only when the
incoming offset is newer than the stored one (``status_offset``), checked by
the database in the same statement, so re-delivery and replays change nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects.mysql import insert

from projections.mysql.models import chargers
from projections.position import Record
from schemas.events import EvseStatusResolved


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def rows_for(records: Sequence[Record[object]]) -> list[dict[str, Any]]:
    """The newest record per EVSE in the batch, as rows (pure)."""
    newest: dict[str, Record[EvseStatusResolved]] = {}
    for rec in records:
        if isinstance(rec.event, EvseStatusResolved):
            key = rec.event.payload.evse_key
            if key not in newest or newest[key].offset < rec.offset:
                newest[key] = rec  # type: ignore[assignment]
    return [
        {
            "evse_key": key,
            "country_code": rec.event.payload.country_code,
            "party_id": rec.event.payload.party_id,
            "location_id": rec.event.payload.location_id,
            "evse_uid": rec.event.payload.evse_uid,
            "status": rec.event.payload.status.value,
            "status_last_updated": _naive_utc(rec.event.payload.last_updated),
            "status_offset": rec.offset,
        }
        for key, rec in newest.items()
    ]


class ChargerWriter:
    name = "mysql.chargers"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        stmt = insert(chargers)
        newer = stmt.inserted.status_offset > chargers.c.status_offset
        columns = [c.name for c in chargers.columns if c.name not in ("evse_key", "status_offset")]
        # MySQL applies the assignments left to right, so the guard column
        # must be the last one written.
        assignments = [
            (name, func.IF(newer, stmt.inserted[name], chargers.c[name])) for name in columns
        ]
        guard = func.IF(newer, stmt.inserted.status_offset, chargers.c.status_offset)
        assignments.append(("status_offset", guard))
        self._upsert = stmt.on_duplicate_key_update(assignments)

    def prepare(self) -> None:
        """The table comes from the Alembic migrations."""

    def wipe(self) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(chargers))

    def apply(self, records: Sequence[Record[object]]) -> int:
        rows = rows_for(records)
        if rows:
            with self._engine.begin() as conn:
                conn.execute(self._upsert, rows)
        return len(rows)


class ChargerQuery:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def list(
        self,
        *,
        status: str | None = None,
        country_code: str | None = None,
        party_id: str | None = None,
        location_id: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Chargers ordered by key; ``after`` is the last key of the previous page."""
        query = select(chargers).order_by(chargers.c.evse_key).limit(limit)
        filters = {
            "status": status,
            "country_code": country_code,
            "party_id": party_id,
            "location_id": location_id,
        }
        for column, value in filters.items():
            if value is not None:
                query = query.where(chargers.c[column] == value)
        if after is not None:
            query = query.where(chargers.c.evse_key > after)
        with self._engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]
