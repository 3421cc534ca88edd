"""The composition root: the one place that turns settings into adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from pymongo import MongoClient
from pymongo.database import Database
from sqlalchemy import Engine, create_engine, make_url, text

from api.rate_limit import RateLimiter, RedisRateLimiter
from ocpi_hub.secrets import TokenVault, load_or_create_key
from ocpi_hub.settings import Settings
from producers.authorization import (
    AuthorizationService,
    HttpRealTimeAuthorizer,
    RedisDecisionCache,
)
from producers.credentials import CredentialsService
from producers.log import EventLog, KafkaEventLog
from producers.partner_client import HttpPartnerClient, PartnerClient
from producers.sent_commands import CommandChannel, CommandIds, HttpCommandChannel
from projections.location_folds import LocationFolds
from projections.mongo.cdrs import CdrViewQuery, CdrViewWriter
from projections.mongo.charge_points import ChargePointViewQuery, ChargePointViewWriter
from projections.mongo.commands import CommandViewQuery, CommandViewWriter
from projections.mongo.history import LocationHistoryWriter, TariffHistoryWriter
from projections.mongo.locations import LocationViewQuery, LocationViewWriter
from projections.mongo.partners import PartnerQuery, PartnerViewWriter
from projections.mongo.sent_commands import SentCommandViewQuery, SentCommandViewWriter
from projections.mongo.sessions import SessionViewQuery, SessionViewWriter
from projections.mongo.tariffs import TariffViewQuery, TariffViewWriter
from projections.mongo.tokens import TokenViewQuery, TokenViewWriter
from projections.mysql.cdrs import CdrRowWriter
from projections.mysql.migrate import migrate
from projections.mysql.sessions import SessionRowQuery, SessionRowWriter
from projections.mysql.sites import HierarchyWriter, OpsQuery
from projections.runner import Writer
from projections.write_marks import RedisWriteMarks, WriteMarks
from schemas.events import Party

Doc = dict[str, Any]


def mongo_client(settings: Settings) -> MongoClient[Doc]:
    return MongoClient(settings.mongo_url, serverSelectionTimeoutMS=3000, tz_aware=True)


def mysql_engine(settings: Settings, database: str | None = None) -> Engine:
    url = make_url(settings.mysql_url)
    if database is not None:
        url = url.set(database=database)
    return create_engine(url, pool_pre_ping=True, pool_recycle=3600)


def _on_server(settings: Settings, statement: str, database: str) -> None:
    """Run one statement about ``database`` on the configured server, as the
    configured user, outside any database."""
    if not database.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name: {database!r}")
    admin = create_engine(make_url(settings.mysql_url).set(database=None))
    try:
        with admin.begin() as conn:
            conn.execute(text(statement.format(database=database)))
    finally:
        admin.dispose()


def create_mysql_database(settings: Settings, database: str) -> None:
    """Create a database beside the configured one (same server, same user)."""
    _on_server(settings, "CREATE DATABASE IF NOT EXISTS `{database}`", database)


def drop_mysql_database(settings: Settings, database: str) -> None:
    _on_server(settings, "DROP DATABASE IF EXISTS `{database}`", database)


@dataclass
class Views:
    """The view stores of one namespace (live, or a replay target)."""

    mongo: Database[Doc]
    mysql: Engine
    writers: list[Writer] = field(default_factory=list)

    def prepare(self) -> None:
        """Schema migrations and indexes; safe to run at every start."""
        migrate(self.mysql)
        for writer in self.writers:
            writer.prepare()

    def wipe(self) -> None:
        """Empty every view (for an in-place rebuild); schemas and indexes stay."""
        for writer in self.writers:
            writer.wipe()


def views(
    client: MongoClient[Doc], mongo_db: str, engine: Engine, *, document_cache: int = 0
) -> Views:
    db = client[mongo_db]
    folds = LocationFolds()  # one fold per location and batch for both location views
    writers: list[Writer] = [
        LocationViewWriter(db, cache_size=document_cache, folds=folds),
        PartnerViewWriter(db),
        HierarchyWriter(engine, folds=folds, cache_size=document_cache),
        TariffViewWriter(db),
        TokenViewWriter(db),
        SessionViewWriter(db),
        SessionRowWriter(engine),
        CdrViewWriter(db),
        TariffHistoryWriter(db),
        LocationHistoryWriter(db),
        CdrRowWriter(engine),
        SentCommandViewWriter(db),
        CommandViewWriter(db),
        ChargePointViewWriter(db),
    ]
    return Views(mongo=db, mysql=engine, writers=writers)


@dataclass
class Container:
    """What the HTTP API needs, built once per process."""

    settings: Settings
    event_log: KafkaEventLog
    mongo: MongoClient[Doc]
    mysql: Engine
    redis: aioredis.Redis
    locations: LocationViewQuery
    ops: OpsQuery
    partners: PartnerQuery
    partner_views: PartnerViewWriter
    vault: TokenVault
    partner_client: PartnerClient
    write_marks: WriteMarks
    tariffs: TariffViewQuery
    tokens: TokenViewQuery
    authorization: AuthorizationService
    realtime: HttpRealTimeAuthorizer
    sessions: SessionViewQuery
    session_rows: SessionRowQuery
    cdrs: CdrViewQuery
    rate_limiter: RateLimiter
    charge_points: ChargePointViewQuery
    # Commands as eMSP (producers/sent_commands.py, docs/adr/0019).
    sent_commands: SentCommandViewQuery
    command_channel: CommandChannel
    command_ids: CommandIds
    # Commands as CPO (docs/adr/0017).
    received_commands: CommandViewQuery | None = None


def redis_client(settings: Settings) -> aioredis.Redis:
    """The process's Redis client. Its pool waits for a free connection
    instead of failing: redis-py's default pool raises MaxConnectionsError
    as soon as ``redis_max_connections`` commands are in flight, which a
    gateway holding thousands of chargers reached in every burst of
    heartbeats (presence refreshes lost; bench/README.md, bench.chargers)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout_s,
        socket_timeout=3,
    )
    return aioredis.Redis.from_pool(pool)


def build_container(settings: Settings) -> Container:
    client = mongo_client(settings)
    engine = mysql_engine(settings)
    redis = redis_client(settings)
    tokens = TokenViewQuery(client[settings.mongo_db])
    realtime = HttpRealTimeAuthorizer(settings.authorization_timeout_s)
    return Container(
        settings=settings,
        event_log=KafkaEventLog(
            settings.kafka_bootstrap, settings.topic_prefix, settings.produce_timeout_s
        ),
        mongo=client,
        mysql=engine,
        redis=redis,
        locations=LocationViewQuery(client[settings.mongo_db]),
        ops=OpsQuery(engine),
        partners=PartnerQuery(client[settings.mongo_db]),
        partner_views=PartnerViewWriter(client[settings.mongo_db]),
        vault=vault(settings),
        partner_client=HttpPartnerClient(settings.outbound_timeout_s),
        write_marks=RedisWriteMarks(redis, settings.topic_prefix),
        tariffs=TariffViewQuery(client[settings.mongo_db]),
        tokens=tokens,
        authorization=AuthorizationService(
            whitelist=tokens,
            partners=PartnerQuery(client[settings.mongo_db]),
            realtime=realtime,
            cache=RedisDecisionCache(redis),
            vault=vault(settings),
            us=Party(country_code=settings.party_country_code, party_id=settings.party_id),
            cache_ttl_s=settings.authorization_cache_ttl_s,
            key_prefix=settings.topic_prefix,
        ),
        realtime=realtime,
        sessions=SessionViewQuery(client[settings.mongo_db]),
        session_rows=SessionRowQuery(engine),
        cdrs=CdrViewQuery(client[settings.mongo_db]),
        rate_limiter=RedisRateLimiter(redis, settings.topic_prefix),
        sent_commands=SentCommandViewQuery(client[settings.mongo_db]),
        command_channel=HttpCommandChannel(settings.outbound_timeout_s),
        command_ids=CommandIds(load_or_create_key(settings.secret_key, settings.secret_key_file)),
        received_commands=CommandViewQuery(client[settings.mongo_db]),
        charge_points=ChargePointViewQuery(client[settings.mongo_db]),
    )


def vault(settings: Settings) -> TokenVault:
    return TokenVault(load_or_create_key(settings.secret_key, settings.secret_key_file))


def credentials_service(c: Container, event_log: EventLog) -> CredentialsService:
    """The registration service of this platform, on the container's adapters."""
    s = c.settings
    return CredentialsService(
        log=event_log,
        partners=c.partners,
        view=c.partner_views,
        client=c.partner_client,
        vault=c.vault,
        us=Party(country_code=s.party_country_code, party_id=s.party_id),
        business_name=s.business_name,
        versions_url=f"{s.base_url}/ocpi/versions",
    )
