"""MongoDB view of tokens, one document per token (owning party, uid, type).

    {_id: "NL/PEE/0A1B2C/RFID", country_code: "NL", party_id: "PEE",
     uid: "0A1B2C", type: "RFID", state: {token, policy}, token: {...OCPI...} | null,
     _ts: "<last_updated, fixed width>" | null, _positions: {...}}

Identifiers beside the token are folded (CiString); the served token keeps
them as received. ``state`` is the Tokens slice's state
(``producers.tokens``: the write path folds the same events with the same
``evolve``), ``token`` the OCPI Token we serve and ``_ts`` its sort key for
paginated lists. Every event of the topic is applied, authorization
decisions too (they change no state but move the positions), so a read
waiting for the write path's position of a token (api/consistency.py)
finds the view there. Partners' tokens are our whitelist as CPO; ours are
the ones we authorize as eMSP.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from producers.tokens import SLICE, TokenEvent, TokenState
from projections.mongo.counts import Counted, CountsQuery, owner_key
from projections.mongo.folding import Doc, FoldingWriter
from projections.mongo.paging import Page, keyset_page
from projections.position import Record, already_applied
from schemas.events import TokenAuthorizationDecided, TokenPatched, TokenPolicySet, TokenPut
from schemas.ocpi.common import fold, sort_stamp

COLLECTION = "tokens"

_EVENTS = (TokenPut, TokenPatched, TokenPolicySet, TokenAuthorizationDecided)


def apply(doc: Doc | None, record: Record[TokenEvent]) -> Doc | None:
    """Fold one record into a token document (the same object when it was
    applied before): the slice's state with its positions."""
    if doc is not None and already_applied(doc["_positions"], record):
        return doc
    event = record.event
    after = SLICE.evolve(_state(doc), event)
    if after is None:
        return doc  # nothing held yet (e.g. a PATCH before any PUT)
    p = event.payload
    base: Doc = doc or {
        "_id": p.key,
        "country_code": fold(p.country_code),
        "party_id": fold(p.party_id),
        "uid": fold(p.uid),
        "type": p.type.value,
        "_positions": {},
    }
    return {
        **base,
        "state": after.model_dump(mode="json"),
        "token": after.token,
        "_ts": sort_stamp(after.token["last_updated"]) if after.token else None,
        "_positions": {**base["_positions"], record.position_field: record.offset},
    }


def _key(record: Record[Any]) -> str | None:
    event = record.event
    return event.aggregate_key if isinstance(event, _EVENTS) else None


def count_keys(doc: Doc | None) -> frozenset[str]:
    """A token counts for its owner's list while it is served."""
    if doc is None or doc.get("_ts") is None:
        return frozenset()
    return frozenset({owner_key(doc["country_code"], doc["party_id"])})


class TokenViewWriter(FoldingWriter):
    def __init__(self, db: Database[Doc]) -> None:
        super().__init__(
            "mongo.tokens",
            db[COLLECTION],
            _key,
            apply,
            reads=_EVENTS,
            counted=Counted(db, COLLECTION, count_keys),
        )

    def prepare(self) -> None:
        super().prepare()
        # Keyset pagination of one party's tokens (the Sender list), and who
        # holds a token presented at our chargers (uid and type, any party).
        keyset = [("_ts", ASCENDING), ("_id", ASCENDING)]
        self._coll.create_index([("country_code", ASCENDING), ("party_id", ASCENDING), *keyset])
        self._coll.create_index([("uid", ASCENDING), ("type", ASCENDING)])
        # The token an OCPI 2.1.1 Session or CDR names by its auth_id.
        self._coll.create_index([("country_code", ASCENDING), ("token.contract_id", ASCENDING)])


def _state(doc: Doc | None) -> TokenState | None:
    return TokenState.model_validate(doc["state"]) if doc and doc.get("state") else None


class TokenViewQuery:
    """What the API reads, on its async client (the writer above stays sync)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll: AsyncCollection[Doc] = db[COLLECTION]
        self._counts = CountsQuery(db, COLLECTION)

    async def read(self, key: str) -> tuple[TokenState | None, dict[str, int]]:
        """The state of a token under its key and the positions applied to it."""
        doc = await self._coll.find_one({"_id": key}, {"state": 1, "_positions": 1})
        return _state(doc), dict((doc or {}).get("_positions") or {})

    async def positions(self, key: str) -> dict[str, int]:
        doc = await self._coll.find_one({"_id": key}, {"_positions": 1})
        return dict(doc.get("_positions") or {}) if doc else {}

    async def holders(
        self, uid: str, token_type: str, *, exclude_party: tuple[str, str] | None = None
    ) -> list[str]:
        """The keys of every token held with this uid and type (several
        parties may use the same uid), most recently updated first;
        ``exclude_party`` leaves one party's (our own) out. The states
        themselves are read from the write path (producers/authorization.py)."""
        filt: Doc = {"uid": fold(uid), "type": token_type, "token": {"$ne": None}}
        docs = self._coll.find(filt, {"country_code": 1, "party_id": 1}).sort("_ts", DESCENDING)
        skip = (fold(exclude_party[0]), fold(exclude_party[1])) if exclude_party else None
        return [
            str(doc["_id"]) async for doc in docs if skip != (doc["country_code"], doc["party_id"])
        ]

    async def by_contract_id(
        self, country_code: str, party_id: str, contract_id: str
    ) -> list[dict[str, Any]]:
        """One party's tokens with this contract id (an OCPI 2.1.1 ``auth_id``),
        most recently updated first."""
        filt: Doc = {
            "country_code": fold(country_code),
            "party_id": fold(party_id),
            "token.contract_id": contract_id,
        }
        docs = self._coll.find(filt, {"token": 1}).sort("_ts", DESCENDING)
        return [doc["token"] async for doc in docs if doc.get("token")]

    async def page(
        self,
        *,
        country_code: str,
        party_id: str,
        date_from: datetime | None = None,
        date_to: datetime | None = None,
        after: tuple[str, str] | None = None,
        skip: int = 0,
        limit: int,
    ) -> Page:
        """One party's tokens oldest ``last_updated`` first (then by key):
        ``date_from`` inclusive, ``date_to`` exclusive, keyset after the
        previous page's last item, or a plain ``skip``."""
        return await keyset_page(
            self._coll,
            "token",
            {"country_code": fold(country_code), "party_id": fold(party_id)},
            date_from=date_from,
            date_to=date_to,
            after=after,
            skip=skip,
            limit=limit,
            maintained_total=self._counts.totaller(country_code, party_id),
        )

    async def recent(
        self, *, country_code: str | None = None, party_id: str | None = None, limit: int
    ) -> list[TokenState]:
        """The most recently updated tokens (ours and partners'), or one
        party's: the dashboard's list, with each token's policy."""
        match: Doc = {"token": {"$ne": None}}
        if country_code and party_id:
            match |= {"country_code": fold(country_code), "party_id": fold(party_id)}
        found = (
            self._coll.find(match, {"state": 1})
            .sort([("_ts", DESCENDING), ("_id", DESCENDING)])
            .limit(limit)
        )
        return [state async for doc in found if (state := _state(doc)) is not None]
