"""Every client the composition root builds bounds its calls by the
settings (issue 12), and a store that fails or times out is answered OCPI
3000 "retry", never HTTP 500."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from api.errors import install_error_handlers
from ocpi_hub.bootstrap import async_mongo_client, mongo_client, mysql_engine, redis_client
from ocpi_hub.settings import Settings


def settings() -> Settings:
    return Settings(
        redis_socket_timeout_s=2.5,
        redis_connect_timeout_s=1.5,
        mysql_connect_timeout_s=4,
        mysql_read_timeout_s=7,
        mysql_write_timeout_s=8,
        mysql_view_writer_timeout_s=50,
        mongo_connect_timeout_s=2.0,
        mongo_socket_timeout_s=9.0,
        mongo_server_selection_timeout_s=1.0,
        mongo_operation_timeout_s=6.0,
    )


async def test_redis_client_bounds_commands_and_connections() -> None:
    client = redis_client(settings())
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 2.5
    assert kwargs["socket_connect_timeout"] == 1.5
    await client.aclose()


@pytest.mark.parametrize(("view_writer", "read_s", "write_s"), [(False, 7, 8), (True, 50, 50)])
def test_mysql_engine_bounds_connect_read_and_write(
    view_writer: bool, read_s: int, write_s: int
) -> None:
    engine = mysql_engine(settings(), view_writer=view_writer)
    seen: dict[str, Any] = {}

    class SeenError(Exception):
        pass

    # SQLAlchemy hands the driver's connect parameters to this hook first;
    # stop there: no server is needed to see them.
    @event.listens_for(engine, "do_connect")
    def capture(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        seen.update(cparams)
        raise SeenError

    try:
        with pytest.raises(SeenError):
            engine.connect()
        assert seen["connect_timeout"] == 4
        assert seen["read_timeout"] == read_s
        assert seen["write_timeout"] == write_s
    finally:
        engine.dispose()


def test_sync_mongo_client_bounds_sockets() -> None:
    client = mongo_client(settings())
    try:
        pool = client.options.pool_options
        assert pool.socket_timeout == 9.0
        assert pool.connect_timeout == 2.0
        assert client.options.server_selection_timeout == 1.0
    finally:
        client.close()


async def test_async_mongo_client_bounds_operations() -> None:
    client = async_mongo_client(settings())
    try:
        assert client.options.timeout == 6.0
        assert client.options.pool_options.connect_timeout == 2.0
        assert client.options.server_selection_timeout == 1.0
    finally:
        await client.close()


@pytest.mark.parametrize(
    "error",
    [
        RedisTimeoutError("Timeout reading from 127.0.0.1:6379"),
        RedisConnectionError("No connection available."),
        OperationalError("SELECT 1", {}, Exception("(2013, 'Lost connection (timed out)')")),
    ],
)
def test_a_store_timeout_is_ocpi_3000(error: Exception) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/x")
    async def fails() -> None:
        raise error

    response = TestClient(app).get("/x")
    assert response.status_code == 200
    body = response.json()
    assert body["status_code"] == 3000
    assert "retry" in body["status_message"]
    assert "SELECT" not in body["status_message"]
