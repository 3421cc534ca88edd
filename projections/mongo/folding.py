"""One MongoDB document per aggregate, kept by folding its events.

The loop every document view shares: group a batch by document key, read
those documents once, fold the records into them in memory (a pure function
that skips what was applied, see projections/position.py), and write them
back in one unordered bulk of replaces. Each replace is filtered on the
``_version`` that was read (a counter every write raises), so a concurrent
writer is detected (the filter misses, the upsert hits the unique ``_id``)
and the document is read again. Filtering on the positions alone would miss
a writer that advanced another topic's position of the same document.

Many events of one document in a batch are one write: the records are folded
one after the other, and ``finish`` (what the view derives from the folded
state, e.g. the served OCPI object) runs once on the result, not per record.

The documents a writer wrote last are kept in memory (``cache_size`` of them,
least recently written dropped first) and stand in for the read of the next
batch. That is safe because the cache only ever holds what this writer wrote
with the version it wrote: if anyone else has written the document since, the
version filter misses, the key is dropped from the cache and read again.

A view that serves a paginated list also keeps exact counts of its served
documents (``Counted``; projections/mongo/counts.py).
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import bson
import structlog
from bson.raw_bson import RawBSONDocument
from pymongo import ReplaceOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, DocumentTooLarge

from projections.dead_letters import ConcurrentWriteError
from projections.mongo.counts import Counted, CountTally
from projections.position import EventTypes, Record

log = structlog.get_logger(__name__)

Doc = dict[str, Any]
Fold = Callable[[Doc | None, Record[Any]], Doc | None]
Finish = Callable[[Doc], Doc]

_DUPLICATE_KEY = 11000
_MAX_ATTEMPTS = 5
DEFAULT_CACHE_SIZE = 1_000


VERSION = "_version"
# MongoDB's document size limit (maxBsonObjectSize).
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024


def guard(before: Doc | None, after: Doc) -> Doc:
    """Filter that matches only the document as we read it."""
    read = before.get(VERSION) if before else None
    return {"_id": after["_id"], VERSION: {"$exists": False} if read is None else read}


def versioned(before: Doc | None, after: Doc) -> Doc:
    return {**after, VERSION: ((before or {}).get(VERSION) or 0) + 1}


class FoldingWriter:
    def __init__(
        self,
        name: str,
        collection: Collection[Doc],
        key_of: Callable[[Record[Any]], str | None],
        fold: Fold,
        *,
        reads: EventTypes,
        finish: Finish | None = None,
        counted: Counted | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.name = name
        # The events this view folds; it ignores every other record, so a
        # batch without any of them need not be handed to it (position.py).
        self.event_types = reads
        self._coll = collection
        self._key_of = key_of
        self._fold = fold
        self._finish = finish
        self._counted = counted
        self._cache: OrderedDict[str, Doc] = OrderedDict()
        self._cache_size = cache_size

    def prepare(self) -> None:
        """Indexes belong to the view; subclasses or callers add them."""
        if self._counted is not None:
            self._counted.prepare()

    def wipe(self) -> None:
        self._cache.clear()
        self._coll.delete_many({})
        if self._counted is not None:
            self._counted.wipe()

    def apply(self, records: Sequence[Record[Any]]) -> int:
        by_key: dict[str, list[Record[Any]]] = defaultdict(list)
        for rec in records:
            if not isinstance(rec.event, self.event_types):
                continue
            key = self._key_of(rec)
            if key is not None:
                by_key[key].append(rec)
        written = 0
        for _ in range(_MAX_ATTEMPTS):
            if not by_key:
                return written
            attempted, conflicts = self._write(by_key, records)
            written += attempted - len(conflicts)
            by_key = {k: by_key[k] for k in conflicts}
            if conflicts:
                log.warning("projection_conflict_retry", view=self.name, keys=len(conflicts))
        raise ConcurrentWriteError(
            f"{self.name}: documents kept changing under us: {sorted(by_key)[:5]}"
        )

    def fold_group(
        self,
        before: Doc | None,
        records: Sequence[Record[Any]],
        tally: CountTally | None = None,
        batch: Sequence[Record[Any]] = (),
    ) -> Doc | None:
        """The document after ``records`` (one key's, in log order, out of
        ``batch``); ``before`` itself when none of them changes it. With a
        ``tally``, every record that moves the document in or out of a count
        key is noted in it."""
        after = before
        keys_of = self._counted.keys_of if tally is not None and self._counted else None
        keys = keys_of(before) if keys_of is not None else frozenset[str]()
        for rec in records:
            folded = self._fold(after, rec)
            if keys_of is not None and tally is not None and folded is not after:
                now = keys_of(folded)
                if now != keys:
                    tally.add(rec, keys, now)
                    keys = now
            after = folded
        if after is None or after is before or self._finish is None:
            return after
        return self._finish(after)

    def _current(self, keys: list[str]) -> dict[str, Doc]:
        current: dict[str, Doc] = {}
        missing = []
        for key in keys:
            cached = self._cache.get(key)
            if cached is None:
                missing.append(key)
            else:
                current[key] = cached
        if missing:
            current.update({d["_id"]: d for d in self._coll.find({"_id": {"$in": missing}})})
        return current

    def _remember(self, docs: list[Doc]) -> None:
        if self._cache_size <= 0:
            return
        for doc in docs:
            self._cache[doc["_id"]] = doc
            self._cache.move_to_end(doc["_id"])
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _encoded(self, doc: Doc) -> RawBSONDocument:
        """The document as BSON, encoded here rather than inside the bulk:
        a value the store cannot hold (an integer beyond 64 bits, a document
        beyond the size limit) fails now, before any counter is advanced or
        any document of the batch is sent (docs/adr/0028), and pymongo sends
        the bytes as they are instead of encoding the document itself."""
        raw = bson.encode(doc, codec_options=self._coll.codec_options)
        if len(raw) > MAX_DOCUMENT_BYTES:
            raise DocumentTooLarge(f"{self.name}: document {doc['_id']!r} is {len(raw)} bytes")
        return RawBSONDocument(raw)

    def _write(
        self, by_key: dict[str, list[Record[Any]]], batch: Sequence[Record[Any]]
    ) -> tuple[int, set[str]]:
        """One read (of what the cache does not hold), one bulk write;
        returns (documents attempted, keys that conflicted with a concurrent
        writer and must be read again)."""
        current = self._current(list(by_key))
        ops: list[ReplaceOne[Any]] = []
        keys: list[str] = []
        docs: list[Doc] = []
        tally = CountTally() if self._counted is not None else None
        for key, recs in by_key.items():
            before = current.get(key)
            after = self.fold_group(before, recs, tally, batch)
            if after is None or after is before:
                continue
            doc = versioned(before, after)
            ops.append(ReplaceOne(guard(before, after), self._encoded(doc), upsert=True))
            keys.append(key)
            docs.append(doc)
        if not ops:
            return 0, set()
        if tally is not None and self._counted is not None:
            # Counts first: a count is advanced together with the positions
            # it has seen, so re-applying these records after a crash (the
            # documents not written yet) does not count them twice, and a
            # document is never served before it is counted for long.
            self._counted.advance(tally, batch)
        try:
            self._coll.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != _DUPLICATE_KEY for e in errors):
                self._cache.clear()
                raise
            conflicted = {keys[e["index"]] for e in errors}
            for key in conflicted:
                self._cache.pop(key, None)
            self._remember([d for d, k in zip(docs, keys, strict=True) if k not in conflicted])
            return len(ops), conflicted
        except BaseException:
            # Which writes landed is unknown: read everything again.
            self._cache.clear()
            raise
        self._remember(docs)
        return len(ops), set()
