"""MongoDB view of OCPI Location objects, one document per location.

A document holds the location's folded state (``producers.locations.evolve``)
and, beside it, the OCPI Location we serve, ready to return:

    {_id: "NL/ABC/LOC1", country_code: "NL", party_id: "ABC",
     state: {asserted, statuses}, location: {...OCPI...} | null,
     _ts: "<last_updated, fixed width>" | null, _evse_ids: ["NLABCE12345"],
     _positions: {...}}

``_id``, ``country_code`` and ``party_id`` are upper-folded (CiString); the
served object keeps identifiers as received. ``_ts`` is the sort and filter
key of paginated lists (the OCPI text form does not sort). ``_evse_ids``
holds the served EVSEs' ``evse_id`` in the form of ``evse_id_key`` (the
public QR lookup, api/public/discovery.py); being folded, replay rebuilds
it. ``apply`` is the
pure fold, ``LocationViewWriter`` runs it (folding.py), ``LocationViewQuery``
is what the API reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from projections.location_folds import LocationFold, LocationFolds, fold_location
from projections.mongo.counts import Counted, CountsQuery, CountTally, owner_key
from projections.mongo.folding import DEFAULT_CACHE_SIZE, Doc, FoldingWriter
from projections.mongo.paging import Page, keyset_page
from projections.position import Record
from schemas.events import EvseStatusResolved, LocationObjectPatched, LocationObjectPut
from schemas.events.locations import location_key
from schemas.ocpi.common import fold, sort_stamp

COLLECTION = "locations"

_FOLDED = (LocationObjectPut, LocationObjectPatched, EvseStatusResolved)


def evse_id_key(evse_id: str) -> str:
    """An eMI3 EVSE ID as printed on a charger (``NL*ABC*E12345*1``) in
    the one form we look it up by: without ``*`` separators, upper case
    (eMI3 IDs are case-insensitive; the separators are optional)."""
    return evse_id.replace("*", "").strip().upper()


def _evse_ids(location: Doc | None) -> list[str]:
    if not location:
        return []
    found = {evse_id_key(e["evse_id"]) for e in location.get("evses") or () if e.get("evse_id")}
    return sorted(found)


def document(before: Doc | None, records: Sequence[Record[Any]], result: LocationFold) -> Doc:
    """The location document after ``result``, the fold of ``records`` (one
    location's) into ``before``: the folded state and positions beside what
    they serve (the OCPI Location, its sort key, its EVSE IDs), derived once."""
    payload = records[0].event.payload
    # A document written before the view had its current shape has no state:
    # it is rebuilt from the events that follow (``ocpi-hub replay`` rebuilds
    # it whole).
    base: Doc = before or {
        "_id": payload.location_key,
        "country_code": fold(payload.country_code),
        "party_id": fold(payload.party_id),
    }
    location = result.served
    return {
        **base,
        "state": result.state.to_json(),
        "location": location,
        "_ts": sort_stamp(location["last_updated"]) if location else None,
        "_evse_ids": _evse_ids(location),
        "_positions": result.positions,
    }


def apply(doc: Doc | None, record: Record[Any]) -> Doc | None:
    """Fold one record into a location document; the same object when the
    record was applied before."""
    result = fold_location(doc.get("state") if doc else None, _positions(doc), [record])
    return document(doc, [record], result) if result.applied else doc


def _positions(doc: Doc | None) -> dict[str, int]:
    return dict(doc["_positions"]) if doc else {}


def count_keys(doc: Doc | None) -> frozenset[str]:
    """A location counts for its owner's list once its owner asserted it
    (then it is served: ``location`` and ``_ts`` are set)."""
    if doc is None or not (doc.get("state") or {}).get("asserted"):
        return frozenset()
    return frozenset({owner_key(doc["country_code"], doc["party_id"])})


def _key(record: Record[Any]) -> str | None:
    event = record.event
    return event.aggregate_key if isinstance(event, _FOLDED) else None


class LocationViewWriter(FoldingWriter):
    """``folds``: shared with the MySQL hierarchy writer of the same process
    (projections/location_folds.py), so a batch's locations are folded once."""

    def __init__(
        self,
        db: Database[Doc],
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        folds: LocationFolds | None = None,
    ) -> None:
        self._counts = Counted(db, COLLECTION, count_keys)
        super().__init__(
            "mongo.locations",
            db[COLLECTION],
            _key,
            apply,
            reads=_FOLDED,
            counted=self._counts,
            cache_size=cache_size,
        )
        self._folds = folds

    def fold_group(
        self,
        before: Doc | None,
        records: Sequence[Record[Any]],
        tally: CountTally | None = None,
        batch: Sequence[Record[Any]] = (),
    ) -> Doc | None:
        key = _key(records[0])
        assert key is not None
        state_json = before.get("state") if before else None
        if self._folds is not None:
            result = self._folds.fold(
                batch or records, key, state_json, _positions(before), records
            )
        else:
            result = fold_location(state_json, _positions(before), records)
        if not result.applied:
            return before
        after = document(before, records, result)
        if tally is not None:
            owner = count_keys({**after, "state": {"asserted": True}})
            for rec, now_served in result.transitions:
                none: frozenset[str] = frozenset()
                tally.add(rec, none if now_served else owner, owner if now_served else none)
        return after

    def prepare(self) -> None:
        super().prepare()
        # Keyset pagination of one party's locations (the Sender list), and of
        # every location (ops).
        keyset = [("_ts", ASCENDING), ("_id", ASCENDING)]
        self._coll.create_index([("country_code", ASCENDING), ("party_id", ASCENDING), *keyset])
        self._coll.create_index(keyset)
        # The public QR lookup by EVSE ID (multikey).
        self._coll.create_index([("_evse_ids", ASCENDING)])


class LocationViewQuery:
    """What the API reads, on its async client (the writer above stays sync)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll: AsyncCollection[Doc] = db[COLLECTION]
        self._counts = CountsQuery(db, COLLECTION)

    async def read(self, key: str) -> tuple[Doc | None, dict[str, int]]:
        """The served location under an aggregate key (None if not visible)
        and the positions the view has applied to it."""
        doc = await self._coll.find_one({"_id": key}, {"location": 1, "_positions": 1})
        if doc is None:
            return None, {}
        return doc.get("location"), dict(doc.get("_positions") or {})

    async def positions(self, key: str) -> dict[str, int]:
        """Only the positions the view has applied to a location (cheap to poll)."""
        doc = await self._coll.find_one({"_id": key}, {"_positions": 1})
        return dict(doc.get("_positions") or {}) if doc else {}

    async def get(self, country_code: str, party_id: str, location_id: str) -> Doc | None:
        doc = await self._coll.find_one(
            {"_id": location_key(country_code, party_id, location_id)}, {"location": 1}
        )
        return doc["location"] if doc and doc.get("location") else None

    async def by_evse_id(self, evse_id: str, limit: int = 10) -> list[Doc]:
        """The served locations with an EVSE of this ``evse_id`` (any form
        ``evse_id_key`` folds), oldest key first; published or not."""
        cursor = (
            self._coll.find({"_evse_ids": evse_id_key(evse_id)}, {"location": 1})
            .sort("_id", ASCENDING)
            .limit(limit)
        )
        return [doc["location"] async for doc in cursor if doc.get("location")]

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
        """Locations oldest ``last_updated`` first (then by key), filtered as
        the OCPI GET list asks: ``date_from`` inclusive, ``date_to``
        exclusive. ``after`` is the key of the previous page's last item
        (keyset: every page costs the same); ``skip`` serves a plain
        ``offset`` from a client that did not follow our ``Link``."""
        match: Doc = {}
        if country_code is not None:
            match["country_code"] = fold(country_code)
        if party_id is not None:
            match["party_id"] = fold(party_id)
        return await keyset_page(
            self._coll,
            "location",
            match,
            date_from=date_from,
            date_to=date_to,
            after=after,
            skip=skip,
            limit=limit,
            maintained_total=self._counts.totaller(country_code, party_id),
        )
