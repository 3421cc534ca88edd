"""One MongoDB document per aggregate, kept by folding its events.

The loop every document view shares: group a batch by document key, read
those documents once, fold the records into them in memory (a pure function
that skips what was applied, see projections/position.py), and write them
back in one unordered bulk of replaces. Each replace is filtered on the
``_version`` that was read (a counter every write raises), so a concurrent
writer is detected (the filter misses, the upsert hits the unique ``_id``)
and the document is read again. Filtering on the positions alone would miss
a writer that advanced another topic's position of the same document.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from pymongo import ReplaceOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

from projections.position import Record

log = structlog.get_logger(__name__)

Doc = dict[str, Any]
Fold = Callable[[Doc | None, Record[Any]], Doc | None]

_DUPLICATE_KEY = 11000
_MAX_ATTEMPTS = 5


VERSION = "_version"


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
    ) -> None:
        self.name = name
        self._coll = collection
        self._key_of = key_of
        self._fold = fold

    def prepare(self) -> None:
        """Indexes belong to the view; subclasses or callers add them."""

    def wipe(self) -> None:
        self._coll.delete_many({})

    def apply(self, records: Sequence[Record[Any]]) -> int:
        by_key: dict[str, list[Record[Any]]] = defaultdict(list)
        for rec in records:
            key = self._key_of(rec)
            if key is not None:
                by_key[key].append(rec)
        written = 0
        for _ in range(_MAX_ATTEMPTS):
            if not by_key:
                return written
            attempted, conflicts = self._write(by_key)
            written += attempted - len(conflicts)
            by_key = {k: by_key[k] for k in conflicts}
            if conflicts:
                log.warning("projection_conflict_retry", view=self.name, keys=len(conflicts))
        raise RuntimeError(f"{self.name}: documents kept changing under us: {sorted(by_key)[:5]}")

    def _write(self, by_key: dict[str, list[Record[Any]]]) -> tuple[int, set[str]]:
        """One read, one bulk write; returns (documents attempted, keys that
        conflicted with a concurrent writer and must be read again)."""
        current = {d["_id"]: d for d in self._coll.find({"_id": {"$in": list(by_key)}})}
        ops: list[ReplaceOne[Doc]] = []
        keys: list[str] = []
        for key, recs in by_key.items():
            before = current.get(key)
            after = before
            for rec in recs:
                after = self._fold(after, rec)
            if after is None or after is before:
                continue
            ops.append(ReplaceOne(guard(before, after), versioned(before, after), upsert=True))
            keys.append(key)
        if not ops:
            return 0, set()
        try:
            self._coll.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != _DUPLICATE_KEY for e in errors):
                raise
            return len(ops), {keys[e["index"]] for e in errors}
        return len(ops), set()
