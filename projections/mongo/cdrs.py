"""MongoDB view of CDRs, one document per CDR, ours and our partners':

    {_id: "ZZ/HUB/OS-1", country_code: "ZZ", party_id: "HUB",
     role: "issued" | "received", cdr: {...OCPI...}, tariff_source: ...,
     session_key: ..., _token_party: "NL/PEE", _ts: "<last_updated>",
     reconciliation: {...} | null, _positions: {...}}

Which event changes the document is the slice's rule
(``producers.cdrs.evolve``): a CDR is immutable, the first ``CdrIssued`` or
``CdrReceived`` under a key is the CDR and a later one only moves the
position (recorded, not applied); ``CdrReconciled`` (same key, so same
partition and after the received CDR) attaches our recomputed price. The
document adds what readers need from the event the rule applied. Money in
``reconciliation`` is kept as decimal strings (exact). ``apply`` is that
fold, guarded by the Kafka position; ``CdrViewQuery`` is what the API reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from producers.cdrs import CdrState, evolve
from projections.mongo.counts import Counted, CountsQuery, owner_key
from projections.mongo.folding import Doc, FoldingWriter
from projections.mongo.paging import Page, keyset_page
from projections.position import Record, already_applied
from schemas.events import CdrIssued, CdrReceived, CdrReconciled
from schemas.ocpi.common import fold, sort_stamp

COLLECTION = "cdrs"

_FOLDED = (CdrIssued, CdrReceived, CdrReconciled)


def _token_party(cdr: Doc) -> str:
    token = cdr["cdr_token"]
    return f"{fold(token['country_code'])}/{fold(token['party_id'])}"


def _state(doc: Doc | None) -> CdrState | None:
    if doc is None or doc.get("cdr") is None:
        return None
    return CdrState(role=doc["role"], reconciled=doc.get("reconciliation") is not None)


def apply(doc: Doc | None, record: Record[Any]) -> Doc | None:
    """Fold one record into a CDR document (the same object when the record
    was applied before)."""
    if doc is not None and already_applied(doc["_positions"], record):
        return doc
    event = record.event
    payload = event.payload
    base: Doc = doc or {
        "_id": payload.cdr_key,
        "country_code": fold(payload.country_code),
        "party_id": fold(payload.party_id),
        "cdr": None,
        "reconciliation": None,
        "_ts": None,
        "_positions": {},
    }
    positions = {**base["_positions"], record.position_field: record.offset}
    before = _state(doc)
    after = evolve(before, event)
    if after is before or after is None:
        return {**base, "_positions": positions}  # recorded, not applied
    if isinstance(event, CdrReconciled):
        result = payload.model_dump(mode="json", exclude={"country_code", "party_id", "cdr_id"})
        return {**base, "reconciliation": result, "_positions": positions}
    cdr = dict(payload.cdr)
    extra: Doc = {"role": after.role}
    if isinstance(event, CdrIssued):
        extra |= {"session_key": payload.session_key, "tariff_source": payload.tariff_source}
    return {
        **base,
        **extra,
        "cdr": cdr,
        "_token_party": _token_party(cdr),
        "_ts": sort_stamp(cdr["last_updated"]),
        "_positions": positions,
    }


def _key(record: Record[Any]) -> str | None:
    event = record.event
    return event.aggregate_key if isinstance(event, _FOLDED) else None


def count_keys(doc: Doc | None) -> frozenset[str]:
    """A CDR we issued counts for the list of its owner as seen by the
    token's eMSP (the Sender list filters on both)."""
    if doc is None or doc.get("role") != "issued" or doc.get("_ts") is None:
        return frozenset()
    return frozenset({_list_key(doc["country_code"], doc["party_id"], doc["_token_party"])})


def _list_key(country_code: str, party_id: str, token_party: str) -> str:
    return f"{owner_key(country_code, party_id)}|{token_party}"


class CdrViewWriter(FoldingWriter):
    def __init__(self, db: Database[Doc]) -> None:
        super().__init__(
            "mongo.cdrs",
            db[COLLECTION],
            _key,
            apply,
            reads=_FOLDED,
            counted=Counted(db, COLLECTION, count_keys),
        )

    def prepare(self) -> None:
        super().prepare()
        # Keyset pagination of our CDRs for one eMSP (the Sender list), and
        # the reconciliation report of received CDRs.
        keyset = [("_ts", ASCENDING), ("_id", ASCENDING)]
        owner = [("country_code", ASCENDING), ("party_id", ASCENDING)]
        self._coll.create_index([("role", ASCENDING), *owner, ("_token_party", ASCENDING), *keyset])
        self._coll.create_index([("role", ASCENDING), ("reconciliation.discrepancy", ASCENDING)])
        # The dashboard's newest CDRs of a role (api/admin/pages.py).
        self._coll.create_index([("role", ASCENDING), *keyset])


class CdrViewQuery:
    """What the API reads, on its async client (the writer above stays sync)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll: AsyncCollection[Doc] = db[COLLECTION]
        self._counts = CountsQuery(db, COLLECTION)

    async def read(self, key: str) -> tuple[Doc | None, dict[str, int]]:
        """The CDR document under a key (None if none) and its positions."""
        doc = await self._coll.find_one({"_id": key})
        if doc is None or doc.get("cdr") is None:
            return None, dict((doc or {}).get("_positions") or {})
        return doc, dict(doc.get("_positions") or {})

    async def positions(self, key: str) -> dict[str, int]:
        doc = await self._coll.find_one({"_id": key}, {"_positions": 1})
        return dict(doc.get("_positions") or {}) if doc else {}

    async def page(
        self,
        *,
        country_code: str,
        party_id: str,
        token_parties: list[str],
        date_from: datetime | None = None,
        date_to: datetime | None = None,
        after: tuple[str, str] | None = None,
        skip: int = 0,
        limit: int,
    ) -> Page:
        """The CDRs we issued as ``country_code/party_id`` for tokens of the
        given eMSP parties, oldest ``last_updated`` first (then by key):
        ``date_from`` inclusive, ``date_to`` exclusive; ``after`` is the
        previous page's last key."""
        parties = sorted({fold(p) for p in token_parties})
        match: Doc = {
            "role": "issued",
            "country_code": fold(country_code),
            "party_id": fold(party_id),
            "_token_party": {"$in": parties},
        }
        keys = [_list_key(country_code, party_id, p) for p in parties]
        return await keyset_page(
            self._coll,
            "cdr",
            match,
            date_from=date_from,
            date_to=date_to,
            after=after,
            skip=skip,
            limit=limit,
            maintained_total=lambda: self._counts.total(keys),
        )

    async def reconciliation(
        self, *, only_discrepancies: bool = False, newest: int | None = None
    ) -> list[Doc]:
        """Received CDRs with our recomputed price, oldest first; or the
        ``newest`` ones, newest first (the dashboard)."""
        filt: Doc = {"role": "received"}
        if only_discrepancies:
            filt["reconciliation.discrepancy"] = True
        order = DESCENDING if newest else ASCENDING
        docs = self._coll.find(filt, {"cdr": 1, "reconciliation": 1, "_ts": 1}).sort(
            [("_ts", order), ("_id", order)]
        )
        if newest:
            docs = docs.limit(newest)
        return [
            {
                "cdr_key": d["_id"],
                "cdr_id": d["cdr"]["id"],
                "country_code": d["cdr"]["country_code"],
                "party_id": d["cdr"]["party_id"],
                "currency": d["cdr"]["currency"],
                "reconciliation": d.get("reconciliation"),
            }
            async for d in docs
            if d.get("cdr") is not None
        ]

    async def recent_issued(self, *, limit: int) -> list[Doc]:
        """The newest CDRs we issued, credits included: ``{cdr_key, cdr,
        session_key}`` each, newest ``last_updated`` first (the dashboard)."""
        found = (
            self._coll.find({"role": "issued"}, {"cdr": 1, "session_key": 1})
            .sort([("_ts", DESCENDING), ("_id", DESCENDING)])
            .limit(limit)
        )
        return [
            {"cdr_key": d["_id"], "cdr": d["cdr"], "session_key": d.get("session_key")}
            async for d in found
            if d.get("cdr") is not None
        ]

    async def existing(self, keys: list[str]) -> frozenset[str]:
        """Which of ``keys`` hold a CDR (the credits of shown CDRs)."""
        if not keys:
            return frozenset()
        found = self._coll.find({"_id": {"$in": keys}, "cdr": {"$ne": None}}, {"_id": 1})
        return frozenset([str(d["_id"]) async for d in found])
