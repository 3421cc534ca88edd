"""The async client the API reads views through (ocpi_hub/bootstrap.py:
async_mongo_client, docs/adr/0026): it works against the local document
store, and a server that does not answer fails a read within the configured
bound while the event loop goes on serving."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from ocpi_hub.bootstrap import async_mongo_client
from ocpi_hub.settings import Settings
from projections.mongo.folding import Doc
from tests.services import Namespace


async def test_the_async_client_reads_and_writes_the_local_store(namespace: Namespace) -> None:
    # A client of its own, built as the API builds it: the session's shared
    # one failed this first call twice ("operation cancelled") when other
    # modules had used it before, in xdist's order (cause not found).
    aio_mongo: AsyncMongoClient[Doc] = async_mongo_client(namespace.settings)
    assert (await aio_mongo.admin.command("ping"))["ok"] == 1
    coll = aio_mongo[f"{namespace.name}_async"]["probe"]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        await coll.insert_many([{"_id": i, "even": i % 2 == 0, "at": at} for i in range(10)])
        assert await coll.count_documents({"even": True}) == 5
        found = await coll.find({"even": False}).sort("_id", -1).limit(2).to_list()
        assert [d["_id"] for d in found] == [9, 7]
        one = await coll.find_one({"_id": 4})
        assert one is not None and one["at"] == at  # tz-aware, as the sync client reads it
    finally:
        await aio_mongo.drop_database(f"{namespace.name}_async")
        await aio_mongo.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a stalled server)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


async def test_a_stalled_server_fails_the_read_in_time_and_the_loop_goes_on(
    services: Settings, silent_port: int
) -> None:
    settings = services.model_copy(
        update={
            "mongo_url": f"mongodb://127.0.0.1:{silent_port}/?directConnection=true",
            "mongo_server_selection_timeout_s": 0.5,
            "mongo_operation_timeout_s": 0.5,
        }
    )
    client = async_mongo_client(settings)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    try:
        with pytest.raises(PyMongoError) as failed:
            await client["any"]["locations"].find_one({"_id": "NL/ABC/LOC1"})
        took = time.monotonic() - started
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        await client.close()
    assert took < 3.0  # bounded by the settings, not by a socket default
    # The read never blocked the loop (the message says how it failed, should
    # it ever fail faster than the bound).
    assert ticks > 10, f"{ticks} ticks in {took:.3f} s; {failed.value!r}"[:500]
