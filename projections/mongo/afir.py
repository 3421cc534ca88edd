"""MongoDB view of the AFIR feed (docs/afir.md, docs/adr/0048): per
location of ours that its owner published, its DATEX II records, ready to
serve and to push.

    afir_sites:   {_id: "NL/ABC/LOC1", state: {asserted, statuses},
                   static: {...energyInfrastructureSite} | null,
                   dynamic: {...energyInfrastructureSiteStatus} | null,
                   _withdrawn: bool,
                   _static_ts, _dynamic_ts: "<fixed-width stamp>" | null,
                   _tariff_keys: ["NL/ABC/T1", ...], _positions: {...}}
    afir_tariffs: {_id: "NL/ABC/T1", tariff: {...OCPI...} | null,
                   _stamp, _positions: {...}}

Only our own objects (we as CPO) are kept: the feed is the CPO's
obligation for its own charging points. A location folds as the location
view folds it (``projections.location_folds.fold_location``, the same
``evolve``), a tariff as the tariff view does (``producers.tariffs.evolve``);
each document carries the positions it applied, in the same write
(projections/position.py), so a re-delivered or replayed batch changes
nothing. A tariff change re-derives the records of every site whose
connectors name it (``_tariff_keys``). The records are derived by the pure
mapper (producers/afir.py); ``_static_ts`` and ``_dynamic_ts`` are the
records' ``lastUpdated`` (from the objects' own ``last_updated``, so a
replay computes the same), the keys of a pull with ``since``.

A site its owner stops publishing keeps, as its ``dynamic`` record, a
withdrawal (``_withdrawn``; every refill point it last showed ``removed``)
until it is published again: a delta (``since``, the pusher) carries the
removal, a whole feed leaves the site out. Which events withdraw a site is
found event by event, so any batching (live or replay) finds the same.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from pymongo import ASCENDING, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from producers import afir
from producers.locations import LocationState, served
from producers.tariffs import TariffState
from producers.tariffs import evolve as evolve_tariff
from producers.tariffs import served as served_tariff
from projections.dead_letters import ConcurrentWriteError
from projections.location_folds import fold_location
from projections.mongo.folding import VERSION, guard, versioned
from projections.position import Record, already_applied
from schemas.events import (
    EvseStatusResolved,
    LocationObjectPatched,
    LocationObjectPut,
    Party,
    TariffDeleted,
    TariffPut,
)
from schemas.ocpi.common import fold, sort_stamp
from schemas.ocpi.tariffs import exact_numbers

log = structlog.get_logger(__name__)

Doc = dict[str, Any]

_DUPLICATE_KEY = 11000
_MAX_ATTEMPTS = 5

SITES = "afir_sites"
TARIFFS = "afir_tariffs"

_LOCATION_EVENTS = (LocationObjectPut, LocationObjectPatched, EvseStatusResolved)
_TARIFF_EVENTS = (TariffPut, TariffDeleted)


def _ours(payload: Any, us: Party) -> bool:
    return bool(
        fold(payload.country_code) == fold(us.country_code)
        and fold(payload.party_id) == fold(us.party_id)
    )


def _tariff_state(doc: Doc | None) -> TariffState | None:
    if doc is None or doc.get("_stamp") is None:
        return None
    tariff = doc.get("tariff")
    return TariffState(None if tariff is None else exact_numbers(tariff), doc["_stamp"])


def fold_tariff(doc: Doc | None, key: str, records: Sequence[Record[Any]]) -> Doc | None:
    """A tariff document after its records (log order); None when none of
    them was new."""
    positions = dict((doc or {}).get("_positions") or {})
    state = _tariff_state(doc)
    applied = False
    for rec in records:
        if already_applied(positions, rec):
            continue
        state = evolve_tariff(state, rec.event)
        positions[rec.position_field] = rec.offset
        applied = True
    if not applied:
        return None
    return {
        "_id": key,
        "tariff": served_tariff(state),
        "_stamp": state.stamp if state is not None else None,
        "_positions": positions,
    }


@dataclass(frozen=True)
class Withdrawal:
    """A published location its owner stopped publishing: the location as
    last published (``shown``, owner-asserted) and its ``last_updated`` when
    it stopped (``at``)."""

    shown: Doc
    at: str


class Withdrawals:
    """Watches one location's fold (``fold_location``'s ``step``) for its
    withdrawals: ``last`` is set when a record takes a published location
    out of the feed and cleared when one publishes it again, so after the
    fold it is the withdrawal the location ends in, or None when it ends
    published or never stopped being published in the records applied."""

    def __init__(self) -> None:
        self.last: Withdrawal | None = None

    def __call__(self, before: LocationState, after: LocationState) -> None:
        if afir.published(after.asserted):
            self.last = None
        elif afir.published(before.asserted) and before.asserted and after.asserted:
            self.last = Withdrawal(before.asserted, str(after.asserted["last_updated"]))


def site_document(
    key: str,
    state: LocationState,
    positions: Mapping[str, int],
    tariffs: Mapping[str, Doc],
    lang: str,
    before: Mapping[str, Any] | None = None,
    withdrawal: Withdrawal | None = None,
) -> Doc:
    """A site document: the folded state beside the records derived from it
    and the tariffs it names (``tariffs``: OCPI Tariffs by key). Not
    published: the withdrawal record when ``withdrawal`` names one, else
    the one ``before`` (the document as it was) held, else none."""
    location = served(state)
    static, dynamic = afir.records(state.asserted, location, tariffs, lang)
    withdrawn = False
    if static is None and withdrawal is not None:
        last = afir.site_record(withdrawal.shown, tariffs, lang)
        dynamic, withdrawn = afir.withdrawal(last, withdrawal.at), True
    elif static is None and before is not None and before.get("_withdrawn"):
        dynamic, withdrawn = before["dynamic"], True
    return {
        "_id": key,
        "state": state.to_json(),
        "static": static,
        "dynamic": dynamic,
        "_withdrawn": withdrawn,
        "_static_ts": sort_stamp(static["lastUpdated"]) if static else None,
        "_dynamic_ts": sort_stamp(dynamic["lastUpdated"]) if dynamic else None,
        "_tariff_keys": afir.tariff_keys(state.asserted) if state.asserted else [],
        "_positions": dict(positions),
    }


class AfirViewWriter:
    """Keeps the AFIR view from the location, EVSE status and tariff topics.

    One writer owns both collections (the only writer of either), so a
    batch reads each document once and writes it once, in one bulk per
    collection: tariffs first, then the sites that changed or name a tariff
    that did."""

    name = "mongo.afir"
    event_types = (*_LOCATION_EVENTS, *_TARIFF_EVENTS)

    def __init__(self, db: Database[Doc], us: Party, lang: str) -> None:
        self._sites = db[SITES]
        self._tariffs = db[TARIFFS]
        self._us = us
        self._lang = lang

    def prepare(self) -> None:
        self._sites.create_index([("_static_ts", ASCENDING), ("_id", ASCENDING)])
        self._sites.create_index([("_dynamic_ts", ASCENDING), ("_id", ASCENDING)])
        self._sites.create_index([("_tariff_keys", ASCENDING)])

    def wipe(self) -> None:
        self._sites.delete_many({})
        self._tariffs.delete_many({})

    def apply(self, records: Sequence[Record[Any]]) -> int:
        by_location: dict[str, list[Record[Any]]] = defaultdict(list)
        by_tariff: dict[str, list[Record[Any]]] = defaultdict(list)
        for rec in records:
            event = rec.event
            if isinstance(event, _LOCATION_EVENTS) and _ours(event.payload, self._us):
                by_location[event.aggregate_key].append(rec)
            elif isinstance(event, _TARIFF_EVENTS) and _ours(event.payload, self._us):
                by_tariff[event.aggregate_key].append(rec)
        if not by_location and not by_tariff:
            return 0
        written = 0

        tariff_docs = {d["_id"]: d for d in self._tariffs.find({"_id": {"$in": list(by_tariff)}})}
        tariff_writes: list[ReplaceOne[Doc]] = []
        changed_tariffs: list[str] = []
        for key, recs in by_tariff.items():
            # Every tariff of the batch re-prices the sites naming it, also
            # one applied already: a batch retried after a collision must
            # finish the re-pricing it began (a site that is already right
            # is not written again).
            changed_tariffs.append(key)
            after = fold_tariff(tariff_docs.get(key), key, recs)
            if after is not None:
                tariff_docs[key] = after
                tariff_writes.append(ReplaceOne({"_id": key}, after, upsert=True))
        if tariff_writes:
            self._tariffs.bulk_write(tariff_writes, ordered=False)
            written += len(tariff_writes)

        for attempt in range(1, _MAX_ATTEMPTS + 1):
            conflicts, count = self._write_sites(by_location, changed_tariffs, tariff_docs)
            written += count
            if not conflicts:
                return written
            # Another instance (scale-out: a tariff's fan-out in one, the
            # location's own events in the other) wrote a site since we read
            # it: fold those again from what is there now, after a short
            # random pause so two writers do not collide in step again.
            log.warning("projection_conflict_retry", view=self.name, keys=len(conflicts))
            time.sleep(random.uniform(0, 0.01 * attempt))
            by_location = {k: v for k, v in by_location.items() if k in conflicts}
            changed_tariffs = [t for t in changed_tariffs if t in conflicts.values()]
        raise ConcurrentWriteError(f"{self.name}: sites kept changing under us")

    def _write_sites(
        self,
        by_location: Mapping[str, Sequence[Record[Any]]],
        changed_tariffs: Sequence[str],
        tariff_docs: Mapping[str, Doc],
    ) -> tuple[dict[str, str], int]:
        """Fold and write the sites: the keys whose write found the document
        changed since it was read (each with the changed tariff it was
        re-derived for, or ""), and how many were written."""
        site_docs = {d["_id"]: d for d in self._sites.find({"_id": {"$in": list(by_location)}})}
        # Sites untouched by this batch whose ad-hoc price may have changed.
        if changed_tariffs:
            for d in self._sites.find({"_tariff_keys": {"$in": list(changed_tariffs)}}):
                site_docs.setdefault(d["_id"], d)
        folded: dict[str, tuple[LocationState, dict[str, int], Withdrawal | None]] = {}
        for key in set(by_location) | set(site_docs):
            doc = site_docs.get(key)
            positions = dict((doc or {}).get("_positions") or {})
            recs = by_location.get(key, [])
            withdrawals = Withdrawals()
            result = fold_location((doc or {}).get("state"), positions, recs, withdrawals)
            if result.applied or (doc is not None and _names_any(doc, changed_tariffs)):
                folded[key] = (result.state, result.positions, withdrawals.last)
        needed = {
            t
            for state, _, gone in folded.values()
            for shown in (state.asserted, gone.shown if gone else None)
            if shown
            for t in afir.tariff_keys(shown)
        }
        # Tariffs this batch did not change are read afresh at every attempt
        # (after the sites): another instance may have just changed one and
        # be about to re-price this site, which a stale copy would undo.
        known = dict(tariff_docs)
        missing = needed - set(known)
        if missing:
            for d in self._tariffs.find({"_id": {"$in": list(missing)}}):
                known[d["_id"]] = d
        tariffs = {k: d["tariff"] for k, d in known.items() if d.get("tariff")}
        writes = []
        keys = []
        for key, (state, positions, gone) in folded.items():
            before = site_docs.get(key)
            after = site_document(key, state, positions, tariffs, self._lang, before, gone)
            if before is not None and {k: v for k, v in before.items() if k != VERSION} == after:
                continue
            writes.append(ReplaceOne(guard(before, after), versioned(before, after), upsert=True))
            keys.append(key)
        if not writes:
            return {}, 0
        try:
            self._sites.bulk_write(writes, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != _DUPLICATE_KEY for e in errors):
                raise
            # The filter missed (the version moved) and the upsert hit the
            # unique _id: written by someone else meanwhile.
            conflicts = {}
            for e in errors:
                key = keys[e["index"]]
                named = (site_docs.get(key) or {}).get("_tariff_keys") or ()
                conflicts[key] = next((t for t in changed_tariffs if t in named), "")
            return conflicts, len(writes) - len(conflicts)
        return {}, len(writes)


def _names_any(doc: Doc, tariff_keys: Sequence[str]) -> bool:
    return bool(set(doc.get("_tariff_keys") or ()) & set(tariff_keys))


class AfirViewQuery:
    """What the API and the AFIR pusher read, on the async client."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._sites: AsyncCollection[Doc] = db[SITES]
        self._tariffs: AsyncCollection[Doc] = db[TARIFFS]

    async def tariff_applied(self, key: str, field: str, offset: int) -> bool:
        """Whether the view has applied the tariff event at ``offset`` of
        the topic partition ``field`` names (projections/position.py)."""
        doc = await self._tariffs.find_one({"_id": key}, {"_positions": 1})
        return doc is not None and (doc.get("_positions") or {}).get(field, -1) >= offset

    async def records(self, kind: str, since: str | None = None) -> list[Doc]:
        """Every published ``static`` or ``dynamic`` record, oldest
        ``lastUpdated`` first; with ``since`` (a fixed-width stamp) only
        those updated at or after it, withdrawals included (a whole feed
        leaves a withdrawn site out)."""
        field = "_static_ts" if kind == "static" else "_dynamic_ts"
        match: Doc = {field: {"$ne": None} if since is None else {"$gte": since}}
        if since is None:
            match["_withdrawn"] = {"$ne": True}
        cursor = self._sites.find(match, {kind: 1}).sort([(field, ASCENDING), ("_id", ASCENDING)])
        return [doc[kind] async for doc in cursor if doc.get(kind)]

    async def site(self, key: str) -> Doc | None:
        """One site's document (records and positions), published or not."""
        return await self._sites.find_one(
            {"_id": key}, {"static": 1, "dynamic": 1, "_withdrawn": 1, "_positions": 1}
        )

    async def sites_naming(self, tariff_key: str) -> list[Doc]:
        cursor = self._sites.find(
            {"_tariff_keys": tariff_key},
            {"static": 1, "dynamic": 1, "_withdrawn": 1, "_positions": 1},
        )
        return [doc async for doc in cursor]
