"""Fixtures shared by the integration and e2e tiers (the unit tier needs none)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient

from ocpi_hub.bootstrap import async_mongo_client, create_mysql_database, drop_mysql_database
from ocpi_hub.settings import Settings
from tests import task_dump
from tests.services import Namespace, base_settings, delete_topics, isolated, require_services


def pytest_configure(config: pytest.Config) -> None:
    task_dump.install()


@pytest.fixture(scope="session")
def services() -> Iterator[Settings]:
    with base_settings() as settings:
        require_services(settings)
        yield settings


@contextmanager
def fresh_namespace(services: Settings) -> Iterator[Namespace]:
    """Fresh topics, MongoDB database and MySQL database, removed afterwards."""
    ns = isolated(services)
    create_mysql_database(services, ns.name)
    try:
        yield ns
    finally:
        drop_mysql_database(services, ns.name)
        with MongoClient(services.mongo_url) as client:
            client.drop_database(ns.name)
        asyncio.run(delete_topics(services.kafka_bootstrap, ns.settings.topic_prefix))


@pytest.fixture(scope="session")
def namespace(services: Settings) -> Iterator[Namespace]:
    with fresh_namespace(services) as ns:
        yield ns


@pytest.fixture(scope="session")
async def aio_mongo(services: Settings) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    """The async client the API reads views through, built as the API builds
    it (ocpi_hub/bootstrap.py), for tests of the query classes."""
    client = async_mongo_client(services)
    try:
        yield client
    finally:
        await client.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fault suite (tests/chaos) runs after every other test: it starts
    a platform of its own and loads the machine while it kills things."""
    items.sort(key=lambda item: item.get_closest_marker("chaos") is not None)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`make test`'s two xdist processes (``--dist loadscope``) take whole
    modules, and the integration tier whole, in its order, as in a
    one-process run: its modules share one namespace per process and a few
    session clients, and two of them failed when other modules had run
    before them (chart samples left under the namespace's keys; the shared
    async MongoDB client's first call "operation cancelled", twice, cause not
    found), which the usual order never meets. (xdist's
    ``loadgroup`` would do it with marks, but cannot rename items under
    pytest 9.)"""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class TierScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith("tests/integration/"):
                return "tests/integration"
            return nodeid.split("::", 1)[0]

    return TierScheduling(config, log)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """In an xdist worker: the fault suite fails (it runs in one process,
    alone on the machine), and so does a test marked ``alone`` (the schema
    fuzz) in a run that holds unmarked tests too (beside them, xdist lost
    its generated items without a word). `make test` runs the rest first,
    then tests/fuzz in two processes, then tests/chaos in one."""
    if not hasattr(item.config, "workerinput"):
        return
    if item.get_closest_marker("chaos"):
        pytest.fail("the fault suite runs in one process: `make chaos`", pytrace=False)
    if item.get_closest_marker("alone") and not all(
        other.get_closest_marker("alone") for other in item.session.items
    ):
        pytest.fail(
            "marked 'alone': run it apart from the unmarked tests (make test "
            "runs tests/fuzz after the rest)",
            pytrace=False,
        )
