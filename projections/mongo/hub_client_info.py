"""MongoDB view of what hub partners report about the parties behind them
(mod_hub_client_info), one document per (hub, party):

    {_id: "HUB-PARTNER/NL/ABC", hub_partner_id, country_code, party_id,
     client_info: {...OCPI ClientInfo as received...},
     state: {...producers.hub_client_info.ClientInfoState...},
     _ts: "<last_updated, fixed width>", _positions: {...}}

``apply`` is the slice's ``evolve`` plus the position guard. Readers: the
HubClientInfo Sender and Receiver GET, the ops list, and the push lanes
(which parties a hub reports CONNECTED, processors/push.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from producers.hub_client_info import ClientInfoState, evolve, key_of
from projections.mongo.folding import Doc, FoldingWriter
from projections.mongo.paging import Page, keyset_page
from projections.position import Record, already_applied
from schemas.events import ClientInfoPut
from schemas.ocpi.common import sort_stamp

COLLECTION = "hub_client_info"


def _key(record: Record[Any]) -> str | None:
    event = record.event
    return event.aggregate_key if isinstance(event, ClientInfoPut) else None


def _state(doc: Doc | None) -> ClientInfoState | None:
    return None if doc is None else ClientInfoState.model_validate(doc["state"])


def apply(doc: Doc | None, record: Record[ClientInfoPut]) -> Doc | None:
    if doc is not None and already_applied(doc["_positions"], record):
        return doc
    state = evolve(_state(doc), record.event)
    return {
        "_id": key_of(state.hub_partner_id, state.country_code, state.party_id),
        "hub_partner_id": state.hub_partner_id,
        "country_code": state.country_code,
        "party_id": state.party_id,
        "client_info": state.object,
        "state": state.model_dump(mode="json"),
        "_ts": sort_stamp(state.last_updated),
        "_positions": {**(doc or {}).get("_positions", {}), record.position_field: record.offset},
    }


class HubClientInfoViewWriter(FoldingWriter):
    def __init__(self, db: Database[Doc]) -> None:
        super().__init__(
            "mongo.hub_client_info", db[COLLECTION], _key, apply, reads=(ClientInfoPut,)
        )

    def prepare(self) -> None:
        super().prepare()
        # Keyset pagination of one hub's reports (the Sender list).
        self._coll.create_index(
            [("hub_partner_id", ASCENDING), ("_ts", ASCENDING), ("_id", ASCENDING)]
        )


class HubClientInfoQuery:
    """What the API and the push lanes read, on the async client."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll: AsyncCollection[Doc] = db[COLLECTION]

    async def read(self, key: str) -> tuple[Doc | None, dict[str, int]]:
        """The ClientInfo under an aggregate key and the positions applied."""
        doc = await self._coll.find_one({"_id": key}, {"client_info": 1, "_positions": 1})
        if doc is None:
            return None, {}
        return doc.get("client_info"), dict(doc.get("_positions") or {})

    async def positions(self, key: str) -> dict[str, int]:
        doc = await self._coll.find_one({"_id": key}, {"_positions": 1})
        return dict(doc.get("_positions") or {}) if doc else {}

    async def page(
        self,
        *,
        hub_partner_id: str,
        date_from: datetime | None = None,
        date_to: datetime | None = None,
        after: tuple[str, str] | None = None,
        skip: int = 0,
        limit: int,
    ) -> Page:
        """One hub's reports, oldest ``last_updated`` first."""
        return await keyset_page(
            self._coll,
            "client_info",
            {"hub_partner_id": hub_partner_id},
            date_from=date_from,
            date_to=date_to,
            after=after,
            skip=skip,
            limit=limit,
        )

    async def all(self) -> list[ClientInfoState]:
        """Every report held (a few per hub): the push lanes' input."""
        return [
            ClientInfoState.model_validate(d["state"])
            async for d in self._coll.find({}, {"state": 1}).sort("_id", ASCENDING)
        ]

    async def listed(self, hub_partner_id: str | None = None) -> list[Doc]:
        """The ops list: each report with the hub it came from."""
        query: Doc = {} if hub_partner_id is None else {"hub_partner_id": hub_partner_id}
        cursor = self._coll.find(query, {"state": 1}).sort("_id", ASCENDING)
        return [
            ClientInfoState.model_validate(d["state"]).model_dump(mode="json") async for d in cursor
        ]
