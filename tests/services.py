"""Where the integration and e2e tiers find their real services.

``OCPI_HUB_TEST_SERVICES``:
- ``auto`` (default): testcontainers when a Docker engine answers, else the
  services ``make up`` started (``data/run/services.env``);
- ``containers``: testcontainers, always;
- ``local``: the ``make up`` services, always.

Every service is checked before the first test; one that does not answer
fails the run with a message saying how to start it. Nothing is ever skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import pymongo
import pytest
import redis
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr
from sqlalchemy import create_engine, make_url, text

from ocpi_hub.settings import Settings

HOW_TO_START = "start them with `make up` (or run `make test`, which does)"


def docker_reachable() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=2)
        client.ping()
        return True
    except Exception:
        return False


@contextmanager
def _containers() -> Iterator[Settings]:
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.mongodb import MongoDbContainer
    from testcontainers.community.mysql import MySqlContainer
    from testcontainers.community.redis import RedisContainer

    kafka = KafkaContainer("confluentinc/cp-kafka:7.7.1").with_kraft()
    mongo = MongoDbContainer("mongo:7")
    mysql = MySqlContainer("mysql:8.4", username="root", password="ocpi", dbname="ocpi_hub")
    cache = RedisContainer("redis:7")
    started = []
    try:
        for container in (kafka, mongo, mysql, cache):
            container.start()
            started.append(container)
        yield Settings(
            kafka_bootstrap=kafka.get_bootstrap_server(),
            mongo_url=mongo.get_connection_url(),
            mysql_url=mysql.get_connection_url(),
            redis_url=f"redis://{cache.get_container_host_ip()}:{cache.get_exposed_port(6379)}/0",
            _env_file=None,  # type: ignore[call-arg]
        )
    finally:
        for container in reversed(started):
            with suppress(Exception):
                container.stop()


@contextmanager
def base_settings() -> Iterator[Settings]:
    mode = os.environ.get("OCPI_HUB_TEST_SERVICES", "auto")
    if mode == "containers" or (mode == "auto" and docker_reachable()):
        with _containers() as settings:
            yield settings
    elif mode in ("auto", "local"):
        yield Settings()
    else:
        raise pytest.UsageError(f"OCPI_HUB_TEST_SERVICES={mode!r}: use auto, containers or local")


def _check_kafka(s: Settings) -> None:
    import asyncio

    async def probe() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap, request_timeout_ms=5000)
        await asyncio.wait_for(admin.start(), 10)
        try:
            await admin.list_topics()
        finally:
            await admin.close()

    asyncio.run(probe())


def _check_mongo(s: Settings) -> None:
    with pymongo.MongoClient(s.mongo_url, serverSelectionTimeoutMS=5000) as client:
        client.admin.command("ping")


def _check_mysql(s: Settings) -> None:
    engine = create_engine(s.mysql_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def _check_redis(s: Settings) -> None:
    redis.Redis.from_url(s.redis_url, socket_timeout=5).ping()


CHECKS: dict[str, Callable[[Settings], None]] = {
    "Kafka": _check_kafka,
    "MongoDB": _check_mongo,
    "MariaDB/MySQL": _check_mysql,
    "Redis": _check_redis,
}


def require_services(settings: Settings) -> None:
    failures = []
    for name, check in CHECKS.items():
        try:
            check(settings)
        except Exception as exc:
            failures.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
    if failures:
        pytest.fail(
            "services the tests need are not reachable; "
            + HOW_TO_START
            + ":\n  "
            + "\n  ".join(failures),
            pytrace=False,
        )


@dataclass(frozen=True)
class Namespace:
    """An isolated corner of the shared services for one test session."""

    name: str
    settings: Settings


def isolated(base: Settings) -> Namespace:
    name = f"t{uuid.uuid4().hex[:10]}"
    mysql_url = make_url(base.mysql_url).set(database=name)
    settings = base.model_copy(
        update={
            "topic_prefix": f"{name}.",
            "mongo_db": name,
            "mysql_url": mysql_url.render_as_string(hide_password=False),
            # Every party of the tests runs on 127.0.0.1 (docs/adr/0039);
            # the refusal is tested with this off.
            "url_policy_allow_private": True,
        }
    )
    return Namespace(name=name, settings=settings)


def env_of(settings: Settings) -> dict[str, str]:
    """The settings as OCPI_HUB_* variables, for child processes."""
    values = settings.model_dump()
    # A secret's value, not its mask (str() of a SecretStr is "**********").
    return {
        f"OCPI_HUB_{k.upper()}": v.get_secret_value() if isinstance(v, SecretStr) else str(v)
        for k, v in values.items()
    }


async def delete_topics(bootstrap: str, prefix: str) -> None:
    """Remove a test session's topics (its own prefix only)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
