"""Exact counts of what a Sender list serves, kept by the projection.

``X-Total-Count`` is the number of objects a list request matches. Counting
them at read time costs a scan of every match (on the local document store, a
scan of the whole collection), so a view that serves a list keeps the count
itself, in the ``counts`` collection, per *count key* (what a request
filters on besides the time window: the owning party, or the party and the
token's party) and per topic partition:

    {_id: "<view>|<count key>|<topic@partition>", view, key, position,
     n: <documents served>, offset: <last offset counted>}

A document contributes to a count key while it is served (a PUT made the
location visible; a DELETE withdrew the tariff). When a record makes a
document enter or leave a key, that change is counted on the record's own
partition, and only if the record lies beyond that counter's ``offset``.
Each batch advances the counters it changes, to the highest offset of the
batch in that partition, **before** it writes the documents: a crash
between the two re-delivers the records, their documents are folded again
with the same changes, and the counter, already past them, does not count
them twice. A count is so never ahead of its documents by more than the batch
being written, and replays (from offset zero, same records) rebuild the same
counts. The update of a counter is filtered on the offset it was read with,
so two writers of one partition (a zombie) cannot both count a record.

Requests with ``date_from``/``date_to`` cannot be answered from these
(a window is arbitrary); they count the matches in the index
(projections/mongo/paging.py).

``Counted`` is the writer's side (sync, in the projections process);
``CountsQuery`` reads the totals on the API's async client.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from projections.dead_letters import ConcurrentWriteError
from projections.position import Record
from schemas.ocpi.common import fold

Doc = dict[str, Any]
KeysOf = Callable[[Doc | None], frozenset[str]]

COLLECTION = "counts"
_DUPLICATE_KEY = 11000
_MAX_ATTEMPTS = 5


@dataclass
class CountTally:
    """The changes one batch makes, per (count key, position field): the
    offset and +1/-1 of every record that moved a document in or out."""

    changes: dict[tuple[str, str], list[tuple[int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def add(self, record: Record[Any], before: frozenset[str], after: frozenset[str]) -> None:
        for key in after - before:
            self.changes[(key, record.position_field)].append((record.offset, 1))
        for key in before - after:
            self.changes[(key, record.position_field)].append((record.offset, -1))


class Counted:
    """The counts of one view as its writer keeps them, and how a document
    maps to its count keys (the API reads the totals through ``CountsQuery``)."""

    def __init__(self, db: Database[Doc], view: str, keys_of: KeysOf) -> None:
        self._coll: Collection[Doc] = db[COLLECTION]
        self.view = view
        self.keys_of = keys_of

    def prepare(self) -> None:
        self._coll.create_index([("view", ASCENDING), ("key", ASCENDING)])

    def wipe(self) -> None:
        self._coll.delete_many({"view": self.view})

    def advance(self, tally: CountTally, batch: Sequence[Record[Any]]) -> None:
        """Count the tally's changes that lie beyond each counter's offset and
        move those counters to the batch's end in their partitions."""
        if not tally.changes:
            return
        ends: dict[str, int] = {}
        for rec in batch:
            field_ = rec.position_field
            if rec.offset > ends.get(field_, -1):
                ends[field_] = rec.offset
        pending = dict(tally.changes)
        for _ in range(_MAX_ATTEMPTS):
            ids = {self._id(key, position): (key, position) for key, position in pending}
            held = {d["_id"]: d for d in self._coll.find({"_id": {"$in": list(ids)}})}
            ops: list[UpdateOne] = []
            order: list[tuple[str, str]] = []
            for counter_id, (key, position) in ids.items():
                doc = held.get(counter_id)
                counted_to = doc["offset"] if doc else -1
                changes = pending[(key, position)]
                delta = sum(sign for offset, sign in changes if offset > counted_to)
                end = max(counted_to, ends[position])
                if end == counted_to and not delta:
                    continue
                ops.append(
                    UpdateOne(
                        {"_id": counter_id, "offset": counted_to}
                        if doc
                        else {"_id": counter_id, "offset": {"$exists": False}},
                        {
                            "$set": {"view": self.view, "key": key, "position": position},
                            "$max": {"offset": end},
                            "$inc": {"n": delta},
                        },
                        upsert=True,
                    )
                )
                order.append((key, position))
            if not ops:
                return
            try:
                self._coll.bulk_write(ops, ordered=False)
                return
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(e.get("code") != _DUPLICATE_KEY for e in errors):
                    raise
                # Another writer moved these counters since we read them:
                # read them again and count what is still beyond them.
                pending = {order[e["index"]]: pending[order[e["index"]]] for e in errors}
        raise ConcurrentWriteError(f"counts of {self.view}: counters kept changing under us")

    def _id(self, key: str, position: str) -> str:
        return f"{self.view}|{key}|{position}"

    def counters(self) -> list[Doc]:
        """Every counter of this view: ``key`` and ``n`` (per partition)."""
        return list(self._coll.find({"view": self.view}, {"key": 1, "n": 1}))


class CountsQuery:
    """The maintained totals of one view, read on the async client."""

    def __init__(self, db: AsyncDatabase[Doc], view: str) -> None:
        self._coll: AsyncCollection[Doc] = db[COLLECTION]
        self.view = view

    async def per_key(self) -> dict[str, int]:
        """Every non-zero total of this view, by key (the counters of all
        partitions added up)."""
        totals: dict[str, int] = {}
        async for d in self._coll.find({"view": self.view}, {"key": 1, "n": 1}):
            totals[d["key"]] = totals.get(d["key"], 0) + int(d.get("n") or 0)
        return {key: n for key, n in sorted(totals.items()) if n}

    async def total(self, keys: Iterable[str] | None) -> int:
        """The documents served under any of ``keys`` (each document is under
        at most one of the keys a request names); None: under any key."""
        filt: Doc = {"view": self.view}
        if keys is not None:
            wanted = sorted(set(keys))
            if not wanted:
                return 0
            filt["key"] = {"$in": wanted}
        return sum([int(d.get("n") or 0) async for d in self._coll.find(filt, {"n": 1})])

    def totaller(
        self, country_code: str | None, party_id: str | None
    ) -> Callable[[], Awaitable[int]] | None:
        """The maintained total of a list filtered on its owner, both or
        neither given (keys ``CC/PID``); None for one without the other
        (no count is kept per country alone)."""
        if country_code is None and party_id is None:
            return lambda: self.total(None)
        if country_code is None or party_id is None:
            return None
        key = owner_key(country_code, party_id)
        return lambda: self.total([key])


def owner_key(country_code: str, party_id: str) -> str:
    """The count key of one owning party."""
    return f"{fold(country_code)}/{fold(party_id)}"
