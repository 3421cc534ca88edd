"""SecantusDB as `make up` runs it: its own command line, with each
collection's index catalog held in memory (docs/adr/0052).

SecantusDB 0.7.0b3 reads a collection's index definitions back from its
catalog table (a WiredTiger cursor walk and a BSON decode per index) several
times for every document it writes: to find candidates, partial filters,
unique indexes and geo options. Under the projections' writes that is ~40 %
of the server's CPU. Here a write reuses the rows another write read, when
it would have read the same ones:

* only inside a write transaction, by a thread holding the collection's
  write lock (SecantusDB's ``_coll_lock``, which every insert, update and
  delete of the collection takes before it begins its transaction); other
  reads read the table as before;
* every method that writes the catalog (index and collection DDL) moves the
  generation when it starts and when it ends, and while one runs nothing is
  reused or kept; a write reuses rows only if no such method ran or runs
  since its own transaction began, so the rows are what its snapshot holds;
* an index newly marked multikey by a write moves the generation too (that
  transaction then reads directly); the next transaction on the collection
  begins after it committed or rolled back, and reads afresh.

Rows are kept as bytes and decoded for each caller, so no caller can change
another's. Production runs MongoDB; this file only starts the local store.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
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
    """Catalog rows per (database, collection), valid for one generation.

    The generation moves whenever the catalog may change; while a catalog
    writer runs (``changing``) nothing is reused or kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = 0
        self.changing = 0
        self.rows: dict[tuple[str, str], tuple[int, list[Row]]] = {}
        self.hits = 0

    def stale(self) -> None:
        with self._lock:
            self.current += 1

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        with self._lock:
            self.changing += 1
            self.current += 1
        try:
            yield
        finally:
            with self._lock:
                self.current += 1
                self.changing -= 1

    def usable(self, since: int | None) -> bool:
        """Whether a transaction begun at generation ``since`` sees the
        catalog as it is now (no writer ran or runs since it began)."""
        return since is not None and not self.changing and since == self.current

    def held(self, key: tuple[str, str]) -> list[Row] | None:
        kept = self.rows.get(key)
        if kept is not None and kept[0] == self.current:
            self.hits += 1
            return kept[1]
        return None

    def keep(self, key: tuple[str, str], since: int, rows: list[Row]) -> None:
        if self.usable(since):
            self.rows[key] = (since, rows)


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
    # The generation at which this thread's current write transaction began
    # (taken before it begins, so its snapshot is at least that recent).
    began = threading.local()
    table = secantus_storage._IDX_TABLE
    walk = storage_class._iter_indexes
    transaction = storage_class._batch_transaction

    @contextlib.contextmanager
    def batch_transaction(self: Any, *, sync: bool = False) -> Iterator[Any]:
        outermost = getattr(began, "since", None) is None and (
            getattr(self._tls, "user_txn", None) is None  # a client's transaction: older
        )
        if outermost:
            began.since = cache.current
        try:
            with transaction(self, sync=sync) as session:
                yield session
        finally:
            if outermost:
                began.since = None

    storage_class._batch_transaction = batch_transaction

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
        since = getattr(began, "since", None)
        lock = self._coll_locks.get(key)
        if not cache.usable(since) or lock is None or not _owned(lock):
            yield from walk(self, db, coll)
            return
        rows = cache.held(key)
        if rows is None:
            rows = read_rows(self, db, coll)
            cache.keep(key, since, rows)
        for name, raw in rows:
            payload = bson.decode(raw)
            yield name, payload.get("key", {}), payload.get("options", {})

    storage_class._iter_indexes = iter_indexes

    def writing(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            with cache.writing():
                return method(self, *args, **kwargs)

        return wrapper

    for name in CATALOG_WRITERS:
        setattr(storage_class, name, writing(getattr(storage_class, name)))

    mark = storage_class._maybe_mark_multikey

    @functools.wraps(mark)
    def mark_multikey(
        self: Any, db: str, coll: str, doc: Any, indexes: Any, already: set[str]
    ) -> set[str]:
        before = len(already)
        marked: set[str] = mark(self, db, coll, doc, indexes, already)
        if len(marked) != before:  # the set it was given, grown in place
            cache.stale()  # this transaction reads directly from here on
        return marked

    storage_class._maybe_mark_multikey = mark_multikey
    return cache


def main() -> int:
    install()
    return int(secantus_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
