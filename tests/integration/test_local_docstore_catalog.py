"""The local document store's launcher (deploy/local/secantusd.py, ADR 0052)
keeps each collection's index catalog in memory: on SecantusDB's own
storage engine, in a temporary directory, writes reuse the catalog and still
obey every index created, dropped or marked multikey after it was kept."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from secantus import storage as secantus_storage

from tests.deploy_scripts import load_script

launcher = load_script("deploy/local/secantusd.py", "deploy_local_secantusd")


class Patched(secantus_storage.Storage):  # type: ignore[misc]
    """The engine with the launcher's patch, leaving the class itself alone."""


CACHE = launcher.install(Patched)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    engine = Patched(str(tmp_path / "db"))
    try:
        yield engine
    finally:
        engine.close()


def _ids(store: Any, query: dict[str, Any]) -> list[int]:
    found = store.find_matching("t", "c", query)
    return sorted(doc["_id"] for doc in (found[0] if isinstance(found, tuple) else found))


def test_writes_reuse_the_catalog_and_obey_every_later_index_change(store: Any) -> None:
    store.insert("t", "c", [{"_id": i, "a": i % 5, "tags": i} for i in range(20)])
    store.create_index("t", "c", "a_1", {"a": 1})
    store.create_index("t", "c", "tags_1", {"tags": 1})
    hits = CACHE.hits
    for i in range(20):
        store.update_matching("t", "c", {"_id": i}, {"$set": {"b": i}})
    assert CACHE.hits > hits  # kept rows were reused under the write lock

    # A unique index created after the rows were kept is enforced.
    store.update_matching("t", "c", {"_id": 1}, {"$set": {"u": "x"}})
    store.create_index("t", "c", "u_1", {"u": 1}, {"unique": True, "sparse": True})
    with pytest.raises(secantus_storage.IndexConflict):
        store.update_matching("t", "c", {"_id": 2}, {"$set": {"u": "x"}})
    # ... and no longer once dropped.
    store.drop_index("t", "c", "u_1")
    store.update_matching("t", "c", {"_id": 2}, {"$set": {"u": "x"}})
    assert _ids(store, {"u": "x"}) == [1, 2]

    # A write that makes tags_1 multikey: queries by one element still find
    # every document holding it, arrays and scalars alike.
    store.update_matching("t", "c", {"_id": 3}, {"$set": {"tags": [7, 8]}})
    store.update_matching("t", "c", {"_id": 4}, {"$set": {"tags": [7]}})
    multikey = {
        name for name, _key, options in store._iter_indexes("t", "c") if options.get("multikey")
    }
    assert multikey == {"tags_1"}
    assert _ids(store, {"tags": 7}) == [3, 4, 7]
    store.update_matching("t", "c", {"tags": 7}, {"$set": {"seen": True}}, multi=True)
    assert _ids(store, {"seen": True}) == [3, 4, 7]
    assert _ids(store, {"a": 3, "b": {"$gte": 8}}) == [8, 13, 18]


def test_every_method_that_writes_the_catalog_is_known() -> None:
    """A SecantusDB whose catalog has a writer the launcher does not make
    stale fails here (the launcher also refuses any other version)."""
    source = ast.parse(inspect.getsource(secantus_storage))
    storage = next(
        node
        for node in ast.walk(source)
        if isinstance(node, ast.ClassDef) and node.name == "Storage"
    )
    touching = {
        method.name
        for method in storage.body
        if isinstance(method, ast.FunctionDef)
        and any(isinstance(n, ast.Name) and n.id == "_IDX_TABLE" for n in ast.walk(method))
    }
    # Creating the table at boot, its key format, the read kept, the multikey mark.
    readers = {"__init__", "_table_kf", "_iter_indexes", "_maybe_mark_multikey"}
    assert touching == set(launcher.CATALOG_WRITERS) | readers
