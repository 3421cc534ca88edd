"""A store that stalls (as under SIGSTOP: connections stay open, nothing is
answered) fails the call waiting on it within its configured timeout
(issue 12): the API answers OCPI 3000 "retry" quickly instead of holding the
request, the projections see an error they retry (ADR 0028), and once the
store answers again the same clients work again.

The stall is a proxy in front of the real shared server (``Stall``), so
nothing is done to the server itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pymongo.errors import NetworkTimeout
from sqlalchemy import make_url

from api.errors import install_error_handlers
from api.ops import evses as evses_api
from api.rate_limit import RedisRateLimiter
from ocpi_hub.bootstrap import mongo_client, mysql_engine, redis_client
from ocpi_hub.settings import Settings
from projections.dead_letters import is_transient
from projections.mysql.migrate import migrate
from projections.mysql.sites import OpsQuery
from tests.ops_admin import as_admin
from tests.proxy import Stall
from tests.services import Namespace


def _stall_in_front_of(host: str | None, port: int | None, default_port: int) -> Stall:
    return Stall((host or "127.0.0.1", port or default_port))


@pytest.fixture
def mysql_stall(namespace: Namespace) -> Iterator[tuple[Stall, Settings]]:
    url = make_url(namespace.settings.mysql_url)
    stall = _stall_in_front_of(url.host, url.port, 3306)
    proxied = url.set(host="127.0.0.1", port=stall.port)
    settings = namespace.settings.model_copy(
        update={
            "mysql_url": proxied.render_as_string(hide_password=False),
            "mysql_read_timeout_s": 1,
            "mysql_write_timeout_s": 1,
        }
    )
    yield stall, settings
    stall.close()


def test_a_stalled_mariadb_is_ocpi_3000_within_the_read_timeout(
    mysql_stall: tuple[Stall, Settings],
) -> None:
    stall, settings = mysql_stall
    engine = mysql_engine(settings)
    migrate(engine)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(evses_api.router)
    app.state.container = SimpleNamespace(ops=OpsQuery(engine))
    as_admin(app)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get("/ops/evses").json()["status_code"] == 1000
            stall.stall()
            started = time.monotonic()
            resp = client.get("/ops/evses")
            took = time.monotonic() - started
            assert resp.status_code == 200, resp.text
            assert resp.json()["status_code"] == 3000
            assert took < 4.0, took  # read timeout 1 s; without one it hangs
            stall.resume()
            # The timed-out connection was dropped; the pool opens another.
            assert client.get("/ops/evses").json()["status_code"] == 1000
    finally:
        engine.dispose()


@pytest.fixture
def redis_stall(namespace: Namespace) -> Iterator[tuple[Stall, Settings]]:
    url = urlsplit(namespace.settings.redis_url)
    stall = _stall_in_front_of(url.hostname, url.port, 6379)
    database = url.path.strip("/") or "0"
    settings = namespace.settings.model_copy(
        update={
            "redis_url": f"redis://127.0.0.1:{stall.port}/{database}",
            "redis_socket_timeout_s": 1.5,
            "redis_connect_timeout_s": 1.0,
        }
    )
    yield stall, settings
    stall.close()


def test_a_stalled_redis_is_ocpi_3000_within_the_socket_timeout(
    redis_stall: tuple[Stall, Settings], namespace: Namespace
) -> None:
    stall, settings = redis_stall
    app = FastAPI()
    install_error_handlers(app)
    redis = redis_client(settings)
    limiter = RedisRateLimiter(redis, namespace.settings.topic_prefix)

    @app.get("/limited")
    async def limited() -> dict[str, object]:
        verdict = await limiter.hit("127.0.0.1", 1000, 60)
        return {"status_code": 1000, "data": str(verdict)}

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/limited").json()["status_code"] == 1000
        stall.stall()
        started = time.monotonic()
        resp = client.get("/limited")
        took = time.monotonic() - started
        assert resp.status_code == 200, resp.text
        assert resp.json()["status_code"] == 3000
        assert took < 4.0, took
        stall.resume()
        assert client.get("/limited").json()["status_code"] == 1000


def test_a_stalled_mongodb_fails_a_view_write_in_time_and_is_retried(
    namespace: Namespace,
) -> None:
    url = urlsplit(namespace.settings.mongo_url)
    stall = _stall_in_front_of(url.hostname, url.port, 27017)
    settings = namespace.settings.model_copy(
        update={
            "mongo_url": f"mongodb://127.0.0.1:{stall.port}/?directConnection=true",
            "mongo_socket_timeout_s": 1.0,
        }
    )
    client = mongo_client(settings)
    coll = client[namespace.name]["stall_probe"]
    try:
        coll.replace_one({"_id": 1}, {"_id": 1, "n": 1}, upsert=True)
        stall.stall()
        started = time.monotonic()
        with pytest.raises(NetworkTimeout) as caught:
            coll.replace_one({"_id": 1}, {"_id": 1, "n": 2}, upsert=True)
        assert time.monotonic() - started < 4.0
        # The projections retry this with backoff; never a dead letter.
        assert is_transient(caught.value)
        stall.resume()
        coll.replace_one({"_id": 1}, {"_id": 1, "n": 3}, upsert=True)
        found = coll.find_one({"_id": 1})
        assert found is not None and found["n"] in (2, 3)
    finally:
        client.close()
        stall.close()
