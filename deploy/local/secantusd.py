"""SecantusDB as `make up` runs it: its own command line, with each
collection's index catalog held in memory (docs/adr/0052).

SecantusDB 0.7.0b3 reads a collection's index definitions back from its
catalog table (a WiredTiger cursor walk and a BSON decode per index) several
times for every document it writes: to find candidates, partial filters,
unique indexes and geo options. Under the projections' writes that is ~40 %
of the server's CPU. Here each collection's catalog rows are kept, as bytes,
after the first read and reused while nothing could have changed them:

* rows are kept and reused only by a thread that holds the collection's
  write lock (SecantusDB's own ``_coll_lock``: every insert, update and
  delete of the collection takes it), so no write of this collection runs
  beside the read; other readers read the table as before;
* every method that writes the catalog (index and collection DDL) makes
  every kept row stale, when it starts and when it ends, so a read taken
  while it ran is never reused;
* an index newly marked multikey by a write makes the rows stale too; if
  that write then fails, the next read may still say multikey, which only
  keeps the planner off that index (a full scan: slower, not wrong).

Rows are decoded afresh for each caller, so none of them can change
another's. Production runs MongoDB; this file only starts the local store.
"""

from __future__ import annotations

import functools
import itertools
import sys
from collections.abc import Callable, Iterator
from typing import Any

import bson
from secantus import __version__ as secantus_version
from secantus import storage as secantus_storage
from secantus.cli import main as secantus_main

PINNED = "0.7.0b3"

# Every Storage method that writes the index catalog table; a test reads
# SecantusDB's source and fails when one is added that is not here.
CATALOG_WRITERS = (
    "_recover_pending_drops_locked",
    "drop_collection",
    "drop_database",
    "rename_collection",
    "create_index",
    "drop_index",
    "set_index_expiry",
    "set_index_options",
    "drop_all_indexes",
)

Row = tuple[str, bytes]


class CatalogCache:
    """Catalog rows per (database, collection), valid for one generation."""

    def __init__(self) -> None:
        self.generation = itertools.count(1)
        self.current = next(self.generation)
        self.rows: dict[tuple[str, str], tuple[int, list[Row]]] = {}
        self.hits = 0
        self.reads = 0

    def stale(self) -> None:
        self.current = next(self.generation)

    def held(self, key: tuple[str, str]) -> list[Row] | None:
        kept = self.rows.get(key)
        if kept is not None and kept[0] == self.current:
            self.hits += 1
            return kept[1]
        return None

    def keep(self, key: tuple[str, str], generation: int, rows: list[Row]) -> None:
        self.reads += 1
        if generation == self.current:
            self.rows[key] = (generation, rows)


def _owned(lock: Any) -> bool:
    is_owned: Callable[[], bool] | None = getattr(lock, "_is_owned", None)
    return bool(is_owned and is_owned())


def install(storage_class: type[Any] = secantus_storage.Storage) -> CatalogCache:
    """Patch ``storage_class`` (SecantusDB's Storage) to keep catalog rows."""
    if secantus_version != PINNED:
        raise RuntimeError(
            f"deploy/local/secantusd.py is written against SecantusDB {PINNED}, "
            f"found {secantus_version}: check CATALOG_WRITERS and _iter_indexes again"
        )
    cache = CatalogCache()
    table = secantus_storage._IDX_TABLE
    walk = storage_class._iter_indexes

    def read_rows(self: Any, db: str, coll: str) -> list[Row]:
        c = self._cursor(table)
        c.set_key(db, coll, "")
        rc = c.search_near()
        rows: list[Row] = []
        if rc == secantus_storage.wt.WT_NOTFOUND or (rc < 0 and c.next() != 0):
            return rows
        while True:
            k = c.get_key()
            if k[0] != db or k[1] != coll:
                return rows
            rows.append((k[2], bytes(c.get_value())))
            if c.next() != 0:
                return rows

    @functools.wraps(walk)
    def iter_indexes(
        self: Any, db: str, coll: str
    ) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        key = (db, coll)
        lock = self._coll_locks.get(key)
        if lock is None or not _owned(lock):
            yield from walk(self, db, coll)
            return
        rows = cache.held(key)
        if rows is None:
            generation = cache.current
            rows = read_rows(self, db, coll)
            cache.keep(key, generation, rows)
        for name, raw in rows:
            payload = bson.decode(raw)
            yield name, payload.get("key", {}), payload.get("options", {})

    storage_class._iter_indexes = iter_indexes

    def staling(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            cache.stale()
            try:
                return method(self, *args, **kwargs)
            finally:
                cache.stale()

        return wrapper

    for name in CATALOG_WRITERS:
        setattr(storage_class, name, staling(getattr(storage_class, name)))

    mark = storage_class._maybe_mark_multikey

    @functools.wraps(mark)
    def mark_multikey(
        self: Any, db: str, coll: str, doc: Any, indexes: Any, already: set[str]
    ) -> set[str]:
        before = len(already)
        marked: set[str] = mark(self, db, coll, doc, indexes, already)
        if len(marked) != before or len(already) != before:
            cache.stale()
        return marked

    storage_class._maybe_mark_multikey = mark_multikey
    return cache


def main() -> int:
    install()
    return int(secantus_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
