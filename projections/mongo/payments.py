"""MongoDB views of the Payments slice (OCPI 2.3.0 mod_payments, we as CPO;
docs/adr/0047), one document per aggregate:

    payment_terminals: {_id: "PTP/terminal/T-1", ptp_partner_id, terminal_id,
        deactivated, location_ids: [folded], evse_uids: [folded],
        terminal: {...the Terminal we serve...},
        state: {...producers.payments.TerminalState...}, _ts, _positions}
    payment_advices: {_id: "PTP/advice/F-1", ptp_partner_id,
        authorization_reference (folded), advice: {...as received...},
        state: {...}, _ts, _positions}

``apply`` is the slice's ``evolve`` plus the position guard. Readers: the
Payments Receiver GETs, the ops lists, and the CDR builder (which terminal
took a session's payment: by location or EVSE).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from producers.payments import AdviceState, TerminalState, evolve_advice, evolve_terminal
from projections.mongo.folding import Doc, FoldingWriter
from projections.position import Record, already_applied
from schemas.events.payments import FinancialAdviceConfirmationPosted, TerminalEvent
from schemas.ocpi.common import fold, sort_stamp

TERMINALS = "payment_terminals"
ADVICES = "payment_advices"


def _terminal_key(record: Record[Any]) -> str | None:
    event = record.event
    return event.aggregate_key if isinstance(event, TerminalEvent) else None


def _advice_key(record: Record[Any]) -> str | None:
    event = record.event
    return event.aggregate_key if isinstance(event, FinancialAdviceConfirmationPosted) else None


def _positions(doc: Doc | None, record: Record[Any]) -> dict[str, int]:
    return {**(doc or {}).get("_positions", {}), record.position_field: record.offset}


def apply_terminal(doc: Doc | None, record: Record[Any]) -> Doc | None:
    if doc is not None and already_applied(doc["_positions"], record):
        return doc
    before = None if doc is None else TerminalState.model_validate(doc["state"])
    state = evolve_terminal(before, record.event)
    if state is None:
        return doc  # an assignment of a terminal the view never held
    return {
        "_id": record.event.aggregate_key,
        "ptp_partner_id": state.ptp_partner_id,
        "terminal_id": state.terminal_id,
        "deactivated": state.deactivated,
        "location_ids": [fold(i) for i in state.location_ids],
        "evse_uids": [fold(u) for u in state.evse_uids],
        "terminal": state.object,
        "state": state.model_dump(mode="json"),
        "_ts": sort_stamp(state.last_updated),
        "_positions": _positions(doc, record),
    }


def apply_advice(doc: Doc | None, record: Record[Any]) -> Doc | None:
    if doc is not None and already_applied(doc["_positions"], record):
        return doc
    before = None if doc is None else AdviceState.model_validate(doc["state"])
    state = evolve_advice(before, record.event)
    if state is None:
        return doc
    return {
        "_id": record.event.aggregate_key,
        "ptp_partner_id": state.ptp_partner_id,
        "authorization_reference": fold(state.authorization_reference),
        "advice": state.object,
        "state": state.model_dump(mode="json"),
        "_ts": sort_stamp(state.last_updated),
        "_positions": _positions(doc, record),
    }


class TerminalViewWriter(FoldingWriter):
    def __init__(self, db: Database[Doc]) -> None:
        super().__init__(
            "mongo.payment_terminals",
            db[TERMINALS],
            _terminal_key,
            apply_terminal,
            reads=(TerminalEvent,),
        )

    def prepare(self) -> None:
        super().prepare()
        # The CDR builder's question: which terminals serve this location or EVSE.
        self._coll.create_index([("location_ids", ASCENDING)])
        self._coll.create_index([("evse_uids", ASCENDING)])


class AdviceViewWriter(FoldingWriter):
    def __init__(self, db: Database[Doc]) -> None:
        super().__init__(
            "mongo.payment_advices",
            db[ADVICES],
            _advice_key,
            apply_advice,
            reads=(FinancialAdviceConfirmationPosted,),
        )

    def prepare(self) -> None:
        super().prepare()
        self._coll.create_index([("authorization_reference", ASCENDING)])


class _Reads:
    def __init__(self, coll: AsyncCollection[Doc], served: str) -> None:
        self._coll = coll
        self._served = served

    async def read(self, key: str) -> tuple[Doc | None, dict[str, int]]:
        """The served object under an aggregate key and the positions applied."""
        doc = await self._coll.find_one({"_id": key}, {self._served: 1, "_positions": 1})
        if doc is None:
            return None, {}
        return doc.get(self._served), dict(doc.get("_positions") or {})

    async def positions(self, key: str) -> dict[str, int]:
        doc = await self._coll.find_one({"_id": key}, {"_positions": 1})
        return dict(doc.get("_positions") or {}) if doc else {}


class TerminalQuery(_Reads):
    """The terminals view on the async client."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        super().__init__(db[TERMINALS], "terminal")

    async def serving(self, location_id: str, evse_uid: str) -> list[TerminalState]:
        """The terminals assigned to this location or this EVSE (deactivated
        ones included: the caller judges)."""
        query = {"$or": [{"location_ids": fold(location_id)}, {"evse_uids": fold(evse_uid)}]}
        cursor = self._coll.find(query, {"state": 1}).sort("_id", ASCENDING)
        return [TerminalState.model_validate(d["state"]) async for d in cursor]

    async def listed(self, ptp_partner_id: str | None = None) -> list[Doc]:
        """The ops list: every terminal with its PTP."""
        query: Doc = {} if ptp_partner_id is None else {"ptp_partner_id": ptp_partner_id}
        cursor = self._coll.find(query, {"state": 1}).sort("_id", ASCENDING)
        return [d["state"] async for d in cursor]


class AdviceQuery(_Reads):
    """The financial advice confirmations view on the async client."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        super().__init__(db[ADVICES], "advice")

    async def listed(
        self, *, ptp_partner_id: str | None = None, authorization_reference: str | None = None
    ) -> list[Doc]:
        """The ops list, by PTP and/or by the payment's authorization reference."""
        query: Doc = {}
        if ptp_partner_id is not None:
            query["ptp_partner_id"] = ptp_partner_id
        if authorization_reference is not None:
            query["authorization_reference"] = fold(authorization_reference)
        cursor = self._coll.find(query, {"state": 1}).sort("_id", ASCENDING)
        return [d["state"] async for d in cursor]
