"""MongoDB view of OCPI Tariff objects, one document per tariff.

    {_id: "NL/ABC/T1", country_code: "NL", party_id: "ABC",
     tariff: {...OCPI...} | null, _stamp: "<last_updated held>",
     _ts: "<last_updated, fixed width>" | null, _positions: {...}}

``_id``, ``country_code`` and ``party_id`` are upper-folded (CiString); the
rest is the slice's state (``producers.tariffs.TariffState``): ``tariff`` the
version held in its JSON form (identifiers and numbers as received; null
while deleted), ``_stamp`` its ``last_updated`` or the tombstone's
(docs/adr/0004, 0011). ``_ts`` is the sort and filter key of paginated
lists, null while deleted.

``apply`` is the slice's ``evolve`` plus the position guard,
``TariffViewWriter`` runs it (folding.py: one read and one bulk write per
batch), ``TariffViewQuery`` is what the API reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from producers.tariffs import TariffState, evolve, served
from projections.mongo.counts import Counted, CountsQuery, owner_key
from projections.mongo.folding import Doc, FoldingWriter
from projections.mongo.paging import Page, keyset_page
from projections.position import Record, already_applied
from schemas.events import TariffDeleted, TariffPut
from schemas.events.tariffs import tariff_key
from schemas.ocpi.common import fold
from schemas.ocpi.tariffs import exact_numbers

COLLECTION = "tariffs"

_FOLDED = (TariffPut, TariffDeleted)


def _state(doc: Doc | None) -> TariffState | None:
    if doc is None or doc.get("_stamp") is None:
        return None
    tariff = doc.get("tariff")
    return TariffState(None if tariff is None else exact_numbers(tariff), doc["_stamp"])


def apply(doc: Doc | None, record: Record[Any]) -> Doc | None:
    """Fold one record into a tariff document; the same object when the
    record was applied before. A write the slice does not apply (older than
    the version held) only moves the position."""
    if doc is not None and already_applied(doc["_positions"], record):
        return doc
    event = record.event
    payload = event.payload
    base: Doc = doc or {
        "_id": payload.tariff_key,
        "country_code": fold(payload.country_code),
        "party_id": fold(payload.party_id),
        "tariff": None,
        "_stamp": None,
        "_ts": None,
        "_positions": {},
    }
    positions = {**base["_positions"], record.position_field: record.offset}
    before = _state(doc)
    after = evolve(before, event)
    if after is before or after is None:
        return {**base, "_positions": positions}
    tariff = served(after)
    ts = after.stamp if tariff is not None else None
    return {**base, "tariff": tariff, "_stamp": after.stamp, "_ts": ts, "_positions": positions}


def _key(record: Record[Any]) -> str | None:
    event = record.event
    return event.aggregate_key if isinstance(event, _FOLDED) else None


def count_keys(doc: Doc | None) -> frozenset[str]:
    """A tariff counts for its owner's list while it is served (not deleted)."""
    if doc is None or doc.get("_ts") is None:
        return frozenset()
    return frozenset({owner_key(doc["country_code"], doc["party_id"])})


class TariffViewWriter(FoldingWriter):
    def __init__(self, db: Database[Doc]) -> None:
        counted = Counted(db, COLLECTION, count_keys)
        super().__init__(
            "mongo.tariffs", db[COLLECTION], _key, apply, reads=_FOLDED, counted=counted
        )

    def prepare(self) -> None:
        super().prepare()
        # Keyset pagination (last_updated, then id) of one party's tariffs
        # (the Sender list), and of every tariff.
        keyset = [("_ts", ASCENDING), ("_id", ASCENDING)]
        self._coll.create_index([("country_code", ASCENDING), ("party_id", ASCENDING), *keyset])
        self._coll.create_index(keyset)


class TariffViewQuery:
    """What the API reads, on its async client (the writer above stays sync)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll: AsyncCollection[Doc] = db[COLLECTION]
        self._counts = CountsQuery(db, COLLECTION)

    async def read(self, key: str) -> tuple[Doc | None, dict[str, int]]:
        """The served tariff under an aggregate key (None if none or
        deleted) and the positions the view has applied to it."""
        doc = await self._coll.find_one({"_id": key}, {"tariff": 1, "_positions": 1})
        if doc is None:
            return None, {}
        return doc.get("tariff"), dict(doc.get("_positions") or {})

    async def positions(self, key: str) -> dict[str, int]:
        doc = await self._coll.find_one({"_id": key}, {"_positions": 1})
        return dict(doc.get("_positions") or {}) if doc else {}

    async def get(self, country_code: str, party_id: str, tariff_id: str) -> Doc | None:
        tariff, _ = await self.read(tariff_key(country_code, party_id, tariff_id))
        return tariff

    async def page(
        self,
        *,
        country_code: str | None = None,
        party_id: str | None = None,
        date_from: datetime | None = None,
        date_to: datetime | None = None,
        after: tuple[str, str] | None = None,
        skip: int = 0,
        limit: int,
    ) -> Page:
        """Tariffs oldest ``last_updated`` first (then by key): ``date_from``
        inclusive, ``date_to`` exclusive; ``after`` is the previous page's
        last key (keyset), ``skip`` serves a plain ``offset``."""
        match: Doc = {}
        if country_code is not None:
            match["country_code"] = fold(country_code)
        if party_id is not None:
            match["party_id"] = fold(party_id)
        return await keyset_page(
            self._coll,
            "tariff",
            match,
            date_from=date_from,
            date_to=date_to,
            after=after,
            skip=skip,
            limit=limit,
            maintained_total=self._counts.totaller(country_code, party_id),
        )
