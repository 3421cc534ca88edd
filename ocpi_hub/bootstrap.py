"""The composition root: the one place that turns settings into adapters,
and that opens and closes each process's clients (``api_process``,
``processors_process``, ``projections_process``, ``push_process``,
``gateway_process``; ``opened`` for the CLI's writing commands)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import redis.asyncio as aioredis
import structlog
from pymongo import AsyncMongoClient, MongoClient, WriteConcern
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database
from sqlalchemy import Engine, create_engine, make_url, text

from api.rate_limit import RateLimiter, RedisRateLimiter
from ocpi_hub.retrying import cancel_and_wait
from ocpi_hub.secrets import TokenVault, load_or_create_key
from ocpi_hub.settings import Settings
from processors.afir_push import AfirPusher
from processors.cdr_push import CDRS_PUSH
from processors.charging_profile_callbacks import ACTIVE_PROFILE_PUSHES, PROFILE_CALLBACKS
from processors.command_callbacks import COMMAND_CALLBACKS
from processors.evse_status_push import EVSE_STATUS_PUSH
from processors.push import LOCATIONS_PUSH, ModulePusher, SharedRead, WholeObjects
from processors.result_callbacks import RedisDeliveredMarks, ResultCallbackSender
from processors.session_push import SESSIONS_PUSH
from processors.tariff_push import TARIFFS_PUSH
from processors.token_push import TOKENS_PUSH
from producers import (
    cdrs,
    charge_points,
    charging_profiles,
    hub_client_info,
    invoice_numbers,
    locations,
    operators,
    partners,
    payments,
    received_commands,
    sent_charging_profiles,
    sent_commands,
    sessions,
    tariffs,
    tokens,
)
from producers.afir import Publisher as AfirPublisher
from producers.authorization import (
    AuthorizationService,
    HttpRealTimeAuthorizer,
    RedisDecisionCache,
)
from producers.billing.aggregate import SLICE as BILLING_SLICE
from producers.billing.members import link_key
from producers.credentials import CredentialsService
from producers.decision_store import RedisDecisionStore
from producers.log import EventLog, KafkaEventLog, KafkaLogHistory, ensure_topics
from producers.log_status import KafkaLogStatus, WatchedEventLog
from producers.lookups import Feed, LookupCache
from producers.operators import ApiKeyState
from producers.partner_client import HttpPartnerClient, PartnerClient
from producers.partner_stats import RedisPushStats
from producers.partners import PartnerState
from producers.sent_commands import CommandChannel, CommandIds, HttpCommandChannel
from producers.write_path import Slice, Timing, WritePath
from projections.location_folds import LocationFolds
from projections.mongo.afir import AfirViewQuery, AfirViewWriter
from projections.mongo.audit import AuditQuery, AuditViewWriter
from projections.mongo.cdrs import CdrViewQuery, CdrViewWriter
from projections.mongo.charge_points import ChargePointViewQuery, ChargePointViewWriter
from projections.mongo.dead_letters import DeadLetterQuery, DeadLetterViewWriter
from projections.mongo.evse_status_history import (
    EvseStatusHistoryQuery,
    EvseStatusHistoryWriter,
)
from projections.mongo.history import (
    LocationHistoryQuery,
    LocationHistoryWriter,
    TariffHistoryQuery,
    TariffHistoryWriter,
)
from projections.mongo.hub_client_info import HubClientInfoQuery, HubClientInfoViewWriter
from projections.mongo.locations import LocationViewQuery, LocationViewWriter
from projections.mongo.operators import AccountViewWriter, ApiKeyViewWriter
from projections.mongo.partners import PartnerQuery, PartnerViewWriter
from projections.mongo.payments import (
    AdviceQuery,
    AdviceViewWriter,
    TerminalQuery,
    TerminalViewWriter,
)
from projections.mongo.received_commands import ReceivedCommandViewQuery, ReceivedCommandViewWriter
from projections.mongo.sent_charging_profiles import (
    ActiveProfileViewWriter,
    SentProfileViewWriter,
)
from projections.mongo.sent_commands import SentCommandViewQuery, SentCommandViewWriter
from projections.mongo.sessions import SessionViewQuery, SessionViewWriter
from projections.mongo.tariffs import TariffViewQuery, TariffViewWriter
from projections.mongo.tokens import TokenViewQuery, TokenViewWriter
from projections.mysql.billing import BillingRowWriter
from projections.mysql.cdrs import CdrRowWriter
from projections.mysql.migrate import migrate
from projections.mysql.sessions import SessionRowQuery, SessionRowWriter
from projections.mysql.sites import HierarchyWriter, OpsQuery
from projections.position import Writer
from projections.runner import DeadLetters
from schemas.events import Party

if TYPE_CHECKING:
    from gateway.server import Gateway
    from processors.billing_charges import ChargeRecorder
    from processors.billing_close import ScheduledClose
    from processors.invitation_mailer import InvitationMailer
    from processors.invoice_mailer import InvoiceMailer

log = structlog.get_logger(__name__)

Doc = dict[str, Any]
S = TypeVar("S")

# The aggregates written through the one write path (docs/adr/0022): their
# states are kept in the decision store and rebuilt from these topics.
WRITE_SLICES: tuple[Slice[Any], ...] = (
    locations.SLICE,
    charge_points.SLICE,
    received_commands.SLICE,
    sent_commands.SLICE,
    charging_profiles.SLICE,
    sent_charging_profiles.SLICE,
    sent_charging_profiles.ACTIVE_SLICE,
    partners.SLICE,
    tokens.SLICE,
    sessions.SLICE,
    tariffs.SLICE,
    cdrs.SLICE,
    operators.ACCOUNTS,
    operators.API_KEYS_SLICE,
    BILLING_SLICE,
    invoice_numbers.SLICE,
    hub_client_info.SLICE,
    payments.TERMINALS,
    payments.ADVICES,
)


def mongo_client(settings: Settings) -> MongoClient[Doc]:
    """The sync client of the view writers (projections, replay, CLI): a
    stalled server fails a write after ``mongo_socket_timeout_s`` (a
    ``NetworkTimeout``, which the projections retry with backoff, ADR 0028)."""
    return MongoClient(
        settings.mongo_url,
        serverSelectionTimeoutMS=int(settings.mongo_server_selection_timeout_s * 1000),
        connectTimeoutMS=int(settings.mongo_connect_timeout_s * 1000),
        socketTimeoutMS=int(settings.mongo_socket_timeout_s * 1000),
        tz_aware=True,
    )


def async_mongo_client(settings: Settings, *, bounded: bool = True) -> AsyncMongoClient[Doc]:
    """The client view reads go through (API, gateway, push, the CDR
    builder, CLI reports): awaited on the event loop, no thread per read.
    Server selection is always bounded; ``bounded`` also bounds every
    operation (a cursor's whole life, pymongo's ``timeoutMS``), so a stalled
    server fails the request that waits on it and frees it. A CLI report
    that reads a whole view is not bounded."""
    selection_ms = int(settings.mongo_server_selection_timeout_s * 1000)
    connect_ms = int(settings.mongo_connect_timeout_s * 1000)
    if not bounded:
        return AsyncMongoClient(
            settings.mongo_url,
            serverSelectionTimeoutMS=selection_ms,
            connectTimeoutMS=connect_ms,
            tz_aware=True,
        )
    return AsyncMongoClient(
        settings.mongo_url,
        serverSelectionTimeoutMS=selection_ms,
        connectTimeoutMS=connect_ms,
        timeoutMS=int(settings.mongo_operation_timeout_s * 1000),
        tz_aware=True,
    )


def mysql_engine(
    settings: Settings, database: str | None = None, *, view_writer: bool = False
) -> Engine:
    """An engine on the configured server. ``view_writer``: for the
    projections, replay and the dead-letter tools, whose transactions (a
    batch of events) may take longer than a request's queries."""
    url = make_url(settings.mysql_url)
    if database is not None:
        url = url.set(database=database)
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=3600,
        connect_args=mysql_timeouts(settings, view_writer=view_writer),
    )


def mysql_timeouts(settings: Settings, *, view_writer: bool = False) -> dict[str, int]:
    """pymysql's socket timeouts: a stalled MariaDB fails the query (an
    ``OperationalError``: OCPI 3000 in the API, a retry in the projections)
    instead of blocking its thread for ever."""
    if view_writer:
        read_s = write_s = settings.mysql_view_writer_timeout_s
    else:
        read_s, write_s = settings.mysql_read_timeout_s, settings.mysql_write_timeout_s
    return {
        "connect_timeout": settings.mysql_connect_timeout_s,
        "read_timeout": read_s,
        "write_timeout": write_s,
    }


def _on_server(settings: Settings, statement: str, database: str) -> None:
    """Run one statement about ``database`` on the configured server, as the
    configured user, outside any database."""
    if not database.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name: {database!r}")
    admin = create_engine(
        make_url(settings.mysql_url).set(database=None), connect_args=mysql_timeouts(settings)
    )
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


# The projections' journal barrier (Views.settle): one document per process.
SETTLED = "projections_settled"
_SETTLER = f"{socket.gethostname()}:{os.getpid()}"


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

    def settle(self) -> None:
        """Everything the document store acknowledged so far, journaled
        (docs/adr/0032): a journaled write (``j``) returns once the store's
        journal holds it, and the journal is written in order, so with it
        everything acknowledged before. MySQL commits are durable as they
        are acknowledged (InnoDB's redo log)."""
        self.mongo[SETTLED].with_options(write_concern=WriteConcern(j=True)).update_one(
            {"_id": _SETTLER}, {"$inc": {"batches": 1}}, upsert=True
        )


def views(
    client: MongoClient[Doc],
    mongo_db: str,
    engine: Engine,
    *,
    document_cache: int = 0,
    afir_for: tuple[Party, str] | None = None,
) -> Views:
    """``afir_for``: our party and the feed's language, to keep the AFIR
    view too (docs/adr/0048); None leaves it out (tests of other views)."""
    db = client[mongo_db]
    folds = LocationFolds()  # one fold per location and batch for both location views
    writers: list[Writer] = [
        LocationViewWriter(db, cache_size=document_cache, folds=folds),
        PartnerViewWriter(db),
        HubClientInfoViewWriter(db),
        TerminalViewWriter(db),
        AdviceViewWriter(db),
        HierarchyWriter(engine, folds=folds, cache_size=document_cache),
        TariffViewWriter(db),
        TokenViewWriter(db),
        SessionViewWriter(db),
        SessionRowWriter(engine),
        CdrViewWriter(db),
        TariffHistoryWriter(db),
        LocationHistoryWriter(db),
        EvseStatusHistoryWriter(db),
        CdrRowWriter(engine),
        BillingRowWriter(engine),
        SentCommandViewWriter(db),
        SentProfileViewWriter(db),
        ActiveProfileViewWriter(db),
        ReceivedCommandViewWriter(db),
        ChargePointViewWriter(db),
        DeadLetterViewWriter(db),
        AccountViewWriter(db),
        ApiKeyViewWriter(db),
        AuditViewWriter(db),
    ]
    if afir_for is not None:
        writers.append(AfirViewWriter(db, *afir_for))
    return Views(mongo=db, mysql=engine, writers=writers)


@dataclass
class Container:
    """What the HTTP API needs, built once per process."""

    settings: Settings
    event_log: KafkaEventLog
    write_path: WritePath
    mongo: AsyncMongoClient[Doc]
    mysql: Engine
    redis: aioredis.Redis
    locations: LocationViewQuery
    ops: OpsQuery
    partners: PartnerQuery
    hub_client_info: HubClientInfoQuery
    payment_terminals: TerminalQuery
    payment_advices: AdviceQuery
    # The partner behind a token (api/auth.py, docs/adr/0024).
    partner_tokens: LookupCache[PartnerState]
    # The API key behind an ops request's bearer key (api/ops/access.py).
    api_keys: LookupCache[ApiKeyState]
    audit: AuditQuery
    vault: TokenVault
    partner_client: PartnerClient
    tariffs: TariffViewQuery
    tokens: TokenViewQuery
    authorization: AuthorizationService
    realtime: HttpRealTimeAuthorizer
    sessions: SessionViewQuery
    session_rows: SessionRowQuery
    cdrs: CdrViewQuery
    rate_limiter: RateLimiter
    charge_points: ChargePointViewQuery
    # Sent commands: we as eMSP (producers/sent_commands.py, docs/adr/0019).
    sent_commands: SentCommandViewQuery
    command_channel: CommandChannel
    command_ids: CommandIds
    # Received commands: we as CPO (producers/received_commands.py, docs/adr/0017).
    received_commands: ReceivedCommandViewQuery | None = None
    # What /readyz reports of the log (api/health.py, docs/adr/0030): the
    # write path's appends as they fail, and the partitions' and groups' state.
    appends: WatchedEventLog | None = None
    log_status: KafkaLogStatus | None = None
    # Every PUT and PATCH of a location (the dashboard's status history).
    location_history: LocationHistoryQuery | None = None
    # Each EVSE's resolved statuses, charger-driven ones included (ADR 0038).
    evse_status_history: EvseStatusHistoryQuery | None = None
    # The AFIR feed's records (api/afir.py, docs/adr/0048).
    afir: AfirViewQuery | None = None


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
        socket_timeout=settings.redis_socket_timeout_s,
        socket_connect_timeout=settings.redis_connect_timeout_s,
    )
    return aioredis.Redis.from_pool(pool)


def build_container(settings: Settings) -> Container:
    client = async_mongo_client(settings)
    db = client[settings.mongo_db]
    engine = mysql_engine(settings)
    redis = redis_client(settings)
    token_view = TokenViewQuery(db)
    realtime = HttpRealTimeAuthorizer(
        settings.authorization_timeout_s, allow_private_urls=settings.url_policy_allow_private
    )
    event_log = KafkaEventLog(
        settings.kafka_bootstrap,
        settings.topic_prefix,
        settings.produce_timeout_s,
        max_message_bytes=settings.max_message_bytes,
    )
    appends = WatchedEventLog(event_log)
    path = write_path(settings, appends, redis)
    return Container(
        settings=settings,
        event_log=event_log,
        write_path=path,
        mongo=client,
        mysql=engine,
        redis=redis,
        locations=LocationViewQuery(db),
        ops=OpsQuery(engine),
        partners=PartnerQuery(db),
        hub_client_info=HubClientInfoQuery(db),
        payment_terminals=TerminalQuery(db),
        payment_advices=AdviceQuery(db),
        partner_tokens=partner_tokens(settings, path),
        api_keys=api_keys(settings, path),
        audit=AuditQuery(db),
        vault=vault(settings),
        partner_client=HttpPartnerClient(
            settings.outbound_timeout_s,
            allow_private_urls=settings.url_policy_allow_private,
        ),
        tariffs=TariffViewQuery(db),
        tokens=token_view,
        authorization=AuthorizationService(
            write_path=path,
            directory=token_view,
            partners=PartnerQuery(db),
            realtime=realtime,
            cache=RedisDecisionCache(redis),
            vault=vault(settings),
            us=Party(country_code=settings.party_country_code, party_id=settings.party_id),
            cache_ttl_s=settings.authorization_cache_ttl_s,
            key_prefix=settings.topic_prefix,
        ),
        realtime=realtime,
        sessions=SessionViewQuery(db),
        session_rows=SessionRowQuery(engine),
        cdrs=CdrViewQuery(db),
        rate_limiter=RedisRateLimiter(redis, settings.topic_prefix),
        sent_commands=SentCommandViewQuery(db),
        command_channel=HttpCommandChannel(
            settings.outbound_timeout_s, allow_private_urls=settings.url_policy_allow_private
        ),
        command_ids=CommandIds(load_or_create_key(settings.secret_key, settings.secret_key_file)),
        received_commands=ReceivedCommandViewQuery(db),
        charge_points=ChargePointViewQuery(db),
        location_history=LocationHistoryQuery(db),
        evse_status_history=EvseStatusHistoryQuery(db),
        afir=AfirViewQuery(db),
        appends=appends,
        log_status=KafkaLogStatus(
            settings.kafka_bootstrap,
            settings.topic_prefix,
            request_timeout_s=settings.readyz_check_timeout_s,
        ),
    )


def write_path(settings: Settings, event_log: EventLog, redis: aioredis.Redis) -> WritePath:
    """The one write path on the decision store in Redis (docs/adr/0022)."""
    return WritePath(
        event_log,
        RedisDecisionStore(redis, settings.topic_prefix),
        KafkaLogHistory(settings.kafka_bootstrap, settings.topic_prefix),
        Timing(
            hold_timeout_s=settings.write_hold_timeout_s,
            hold_ttl_s=settings.write_hold_ttl_s,
            fate_window_s=settings.write_fate_window_s,
            settle_timeout_s=settings.write_settle_timeout_s,
        ),
    )


def partner_tokens(settings: Settings, path: WritePath) -> LookupCache[PartnerState]:
    """This process's cache of partners by token hash (docs/adr/0024), kept
    current by the decision store's announcements of partner commits; on a
    store without them (the in-memory one of tests) every lookup goes to
    the store."""
    return _lookup_cache(settings, path, partners.SLICE)


def api_keys(settings: Settings, path: WritePath) -> LookupCache[ApiKeyState]:
    """This process's cache of API keys by key hash, kept current as the
    partners' one is: a revoked key is refused by every API process before
    the revocation is answered (docs/adr/0031)."""
    return _lookup_cache(settings, path, operators.API_KEYS_SLICE)


def _lookup_cache(settings: Settings, path: WritePath, slice_: Slice[S]) -> LookupCache[S]:
    store = path.store
    feed: Feed | None = None
    if isinstance(store, RedisDecisionStore):
        redis_store, lease = store, settings.partner_cache_lease_s

        def follow() -> AsyncIterator[float | None]:
            # Four pings per lease: one late answer does not idle the cache.
            return redis_store.changes(slice_.name, ping_s=lease / 4)

        feed = follow

    return LookupCache(
        path,
        slice_,
        feed,
        lease_s=settings.partner_cache_lease_s,
        size=settings.partner_cache_size,
    )


def vault(settings: Settings) -> TokenVault:
    return TokenVault(load_or_create_key(settings.secret_key, settings.secret_key_file))


def billing_link_key(settings: Settings) -> bytes:
    """The key of members' activation links (producers/billing/members.py)."""
    return link_key(load_or_create_key(settings.secret_key, settings.secret_key_file))


def credentials_service(c: Container, path: WritePath) -> CredentialsService:
    """The registration service of this platform, on the container's
    adapters and the write path ``path``."""
    s = c.settings
    return CredentialsService(
        write_path=path,
        client=c.partner_client,
        vault=c.vault,
        us=Party(country_code=s.party_country_code, party_id=s.party_id),
        business_name=s.business_name,
        versions_url=f"{s.base_url}/ocpi/versions",
        versions=s.offered_versions,
    )


# --- one context manager per process ---------------------------------------------------
#
# Each opens exactly what its process uses and closes it in reverse order,
# whatever happens in between; nothing outside this module builds a client.


async def _topics(settings: Settings) -> None:
    await ensure_topics(
        settings.kafka_bootstrap, settings.topic_prefix, settings.topic_replication_factor
    )


async def close_container(c: Container) -> None:
    """Close every client of a container (each even if another fails)."""
    closers: list[Callable[[], Awaitable[None]]] = [
        c.event_log.stop,
        c.redis.aclose,
        c.realtime.aclose,
        c.mongo.close,
    ]
    for close in closers:
        try:
            await close()
        except Exception as exc:  # closing: report, go on with the others
            log.warning("close_failed", client=getattr(close, "__qualname__", "?"), error=str(exc))
    c.mysql.dispose()


@asynccontextmanager
async def opened(settings: Settings, slices: Sequence[Slice[Any]] = ()) -> AsyncIterator[Container]:
    """A container with its Kafka producer started and the write path ready
    for ``slices`` (their states built from the log if the store lacks
    them); closed when the block ends. For the CLI's writing commands."""
    await _topics(settings)
    c = build_container(settings)
    try:
        await c.event_log.start()
        await c.write_path.ensure_ready(slices)
        yield c
    finally:
        await close_container(c)


@asynccontextmanager
async def api_process(settings: Settings) -> AsyncIterator[Container]:
    """The API: every slice's state ready, and this process's caches of
    partners by token and API keys by hash following the decision store's
    announcements."""
    async with opened(settings, WRITE_SLICES) as c:
        following = {
            "partner_tokens": asyncio.create_task(c.partner_tokens.follow()),
            "api_keys": asyncio.create_task(c.api_keys.follow()),
        }
        try:
            if c.log_status is not None:
                await c.log_status.start()
            yield c
        finally:
            for name, task in following.items():
                await cancel_and_wait(task, name=f"{name}.follow")
            if c.log_status is not None:
                await c.log_status.stop()


@asynccontextmanager
async def gateway_process(settings: Settings) -> AsyncIterator[Gateway]:
    """The OCPP gateway: authorizations decide on the tokens' states and a
    charger is found by its registration, both on the write path."""
    from gateway.message_log import MessageLog
    from gateway.server import Gateway, WritePathRegistry
    from gateway.state import GatewayState

    async with opened(settings, (tokens.SLICE, charge_points.SLICE)) as c:
        yield Gateway(
            settings=settings,
            event_log=c.event_log,
            state=GatewayState(c.redis, settings.topic_prefix),
            registry=WritePathRegistry(c.write_path),
            authorization=c.authorization,
            messages=MessageLog(
                c.redis,
                settings.topic_prefix,
                length=settings.ocpp_message_log_length,
                queue_max=settings.ocpp_message_log_queue,
            ),
        )


@dataclass
class Projections:
    """What `ocpi-hub projections` runs: the live views, and where the events
    they cannot apply go (docs/adr/0028)."""

    live: Views
    dead_letters: DeadLetters


def afir_publisher(settings: Settings) -> AfirPublisher:
    """Who publishes the AFIR feed (publicationCreator) and in which language."""
    return AfirPublisher(
        country=settings.party_country_code,
        national_identifier=settings.afir_publisher_id,
        lang=settings.afir_lang,
        table_id=settings.afir_table_id,
    )


def afir_for(settings: Settings) -> tuple[Party, str]:
    return our_party(settings), settings.afir_lang


def our_party(settings: Settings) -> Party:
    return Party(country_code=settings.party_country_code, party_id=settings.party_id)


def dead_letters(settings: Settings, event_log: EventLog | None) -> DeadLetters:
    """The dead-letter topic through ``event_log``; None: only logged."""
    return DeadLetters(
        settings.kafka_bootstrap,
        settings.topic_prefix,
        our_party(settings),
        event_log,
        retry_initial_s=settings.projection_retry_initial_s,
        retry_max_s=settings.projection_retry_max_s,
    )


@asynccontextmanager
async def projections_process(settings: Settings) -> AsyncIterator[Projections]:
    """The projections: the live views, migrated and indexed, and a producer
    for the dead-letter topic."""
    await _topics(settings)
    client = mongo_client(settings)
    engine = mysql_engine(settings, view_writer=True)
    event_log = KafkaEventLog(
        settings.kafka_bootstrap,
        settings.topic_prefix,
        settings.produce_timeout_s,
        max_message_bytes=settings.max_message_bytes,
    )
    try:
        live = views(
            client,
            settings.mongo_db,
            engine,
            document_cache=settings.projection_document_cache,
            afir_for=afir_for(settings),
        )
        await asyncio.to_thread(live.prepare)
        await event_log.start()
        yield Projections(live, dead_letters(settings, event_log))
    finally:
        await event_log.stop()
        client.close()
        engine.dispose()


@dataclass(frozen=True)
class BillingWorker:
    """What `ocpi-hub billing-worker` runs (docs/adr/0035)."""

    mailer: InvitationMailer
    charges: ChargeRecorder
    settings: Settings
    schedule: ScheduledClose
    invoices: InvoiceMailer

    async def run(self, stop: asyncio.Event) -> None:
        from processors.billing_charges import run_charges
        from processors.billing_close import run_scheduled_close
        from processors.invitation_mailer import run_mailer
        from processors.invoice_mailer import run_invoice_mailer

        s = self.settings
        await asyncio.gather(
            run_mailer(self.mailer, s.kafka_bootstrap, s.topic_prefix, stop),
            run_invoice_mailer(self.invoices, s.kafka_bootstrap, s.topic_prefix, stop),
            run_charges(self.charges, s.kafka_bootstrap, s.topic_prefix, stop),
            run_scheduled_close(self.schedule, s.billing_close_check_s, stop),
        )


@asynccontextmanager
async def billing_worker_process(settings: Settings) -> AsyncIterator[BillingWorker]:
    """The billing worker: the mailer of activation e-mails (it reads the
    invitations' state and records what it mailed; Redis for its claims),
    the mailer of invoices (docs/adr/0040) and the charges of members'
    CDRs, all on the write path."""
    from processors.billing_charges import ChargeRecorder
    from processors.billing_close import ScheduledClose
    from processors.invitation_mailer import InvitationMailer
    from processors.invoice_mailer import InvoiceMailer
    from processors.mail import MailDelivery, SmtpSettings, send_smtp
    from producers.invoice_documents import seller_from
    from producers.invoice_files import InvoiceRenderer

    smtp = SmtpSettings(
        host=settings.smtp_host,
        port=settings.smtp_port,
        timeout_s=settings.smtp_timeout_s,
        starttls=settings.smtp_starttls,
        username=settings.smtp_username,
        password=settings.smtp_password,
    )
    async with opened(settings, (BILLING_SLICE, tokens.SLICE, invoice_numbers.SLICE)) as c:
        delivery = MailDelivery(
            redis=c.redis,
            send=lambda message: send_smtp(smtp, message),
            retry_initial_s=settings.mail_retry_initial_s,
            retry_max_s=settings.mail_retry_max_s,
            max_attempts=settings.mail_max_attempts,
        )
        mailer = InvitationMailer(
            write_path=c.write_path,
            key_prefix=settings.topic_prefix,
            link_key=billing_link_key(settings),
            base_url=settings.base_url,
            mail_from=settings.mail_from,
            delivery=delivery,
            us=our_party(settings),
        )
        us = our_party(settings)
        schedule = ScheduledClose(c.write_path, us, settings.billing_close_day)
        invoices = InvoiceMailer(
            write_path=c.write_path,
            key_prefix=settings.topic_prefix,
            mail_from=settings.mail_from,
            delivery=delivery,
            renderer=InvoiceRenderer.of(
                seller_from(settings),
                settings.billing_pdf_font_regular,
                settings.billing_pdf_font_bold,
            ),
            us=us,
        )
        yield BillingWorker(mailer, ChargeRecorder(c.write_path, us), settings, schedule, invoices)


@dataclass(frozen=True)
class Pushers:
    """What `ocpi-hub push` runs: one module pusher per module we push, and
    the result callbacks (commands, charging profiles, active charging
    profiles)."""

    modules: list[ModulePusher]
    callbacks: list[ResultCallbackSender]
    # The AFIR feed's deltas to the access point (processors/afir_push.py);
    # idle unless OCPI_HUB_AFIR_PUSH_URL is set.
    afir: AfirPusher | None = None

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(
            *(pusher.run(stop) for pusher in self.modules),
            *(sender.supervise(stop) for sender in self.callbacks),
            *([self.afir.run(stop)] if self.afir is not None else []),
        )


@asynccontextmanager
async def push_process(settings: Settings) -> AsyncIterator[Pushers]:
    """The pushers read the registered partners (their view) and unseal the
    tokens we present; a PATCH refused as unknown is repaired with the whole
    object from the locations or sessions view (docs/adr/0042); the
    callbacks remember deliveries in Redis."""
    await _topics(settings)
    client = async_mongo_client(settings)
    redis = redis_client(settings)
    try:
        db = client[settings.mongo_db]
        partner_view = PartnerQuery(db)
        # The six module pushers share their reads of these two views: at
        # most two of each per push_refresh_s, not six (a new partner is
        # noticed within 1.5 push_refresh_s; its lane starts where it
        # registered all the same).
        fresh_s = settings.push_refresh_s / 2
        partners_read = SharedRead(partner_view.all, fresh_s)
        hub_reports = SharedRead(HubClientInfoQuery(db).all, fresh_s)
        sealed = vault(settings)
        stats = RedisPushStats(redis, settings.topic_prefix)
        wholes = WholeObjects(
            {"locations": LocationViewQuery(db), "sessions": SessionViewQuery(db)}
        )
        yield Pushers(
            modules=[
                ModulePusher(
                    settings, partners_read, sealed, module, stats, wholes, hub_reports=hub_reports
                )
                for module in (
                    LOCATIONS_PUSH,
                    SESSIONS_PUSH,
                    CDRS_PUSH,
                    EVSE_STATUS_PUSH,
                    TOKENS_PUSH,
                    TARIFFS_PUSH,
                )
            ],
            callbacks=[
                ResultCallbackSender(
                    settings,
                    partner_view,
                    sealed,
                    RedisDeliveredMarks(redis, settings.topic_prefix, kind.marker),
                    kind,
                )
                for kind in (COMMAND_CALLBACKS, PROFILE_CALLBACKS, ACTIVE_PROFILE_PUSHES)
            ],
            afir=AfirPusher(
                settings, AfirViewQuery(db), afir_publisher(settings), our_party(settings)
            ),
        )
    finally:
        await redis.aclose()
        await client.close()


@contextmanager
def processors_process(settings: Settings) -> Iterator[Any]:
    """The Faust app of the processors, with the MongoDB client the CDR
    builder reads the recorded tariffs and locations through."""
    from processors.app import create_app, ensure_changelogs
    from processors.cdr_builder import MongoCdrInputs

    asyncio.run(_topics(settings))
    # An async client binds to the loop of its first operation: the first
    # read is the CDR builder's, on the Faust worker's loop, and the client
    # is closed on that loop when the worker stops (after its consumer).
    client = async_mongo_client(settings)
    db = client[settings.mongo_db]
    inputs = MongoCdrInputs(
        LocationHistoryQuery(db),
        TariffHistoryQuery(db),
        terminals=TerminalQuery(db),
        retry_initial_s=settings.restart_initial_s,
        retry_max_s=settings.restart_max_s,
    )
    faust_app = create_app(settings, inputs)

    @faust_app.on_before_shutdown.connect  # type: ignore[untyped-decorator]
    async def close_reads(app: Any, **_: Any) -> None:
        await client.close()

    asyncio.run(ensure_changelogs(faust_app, settings))
    yield faust_app


@contextmanager
def replay_views(settings: Settings, into: str | None) -> Iterator[tuple[Views, Views]]:
    """``ocpi-hub replay``: the views to rebuild and the live ones. With
    ``into``, a fresh namespace of that name (dropped and created anew);
    without, the live views themselves, wiped (schemas and indexes kept)."""
    client = mongo_client(settings)
    engines = [mysql_engine(settings, view_writer=True)]
    try:
        cache = settings.projection_document_cache
        live = views(
            client, settings.mongo_db, engines[0], document_cache=cache, afir_for=afir_for(settings)
        )
        if into is None:
            live.prepare()
            log.info("replay_wipe", target="live")
            live.wipe()
            yield live, live
            return
        client.drop_database(into)
        drop_mysql_database(settings, into)
        create_mysql_database(settings, into)
        engines.append(mysql_engine(settings, into, view_writer=True))
        target = views(client, into, engines[-1], document_cache=cache, afir_for=afir_for(settings))
        target.prepare()
        yield target, live
    finally:
        client.close()
        for engine in engines:
            engine.dispose()


@asynccontextmanager
async def dead_letter_log(settings: Settings, *, publish: bool) -> AsyncIterator[DeadLetters]:
    """Where a replay (or a retry) sends what it quarantines: the dead-letter
    topic, or with ``publish`` False only the log (a replay into a scratch
    namespace must not mark the live dead letters)."""
    if not publish:
        yield dead_letters(settings, None)
        return
    await _topics(settings)
    event_log = KafkaEventLog(
        settings.kafka_bootstrap,
        settings.topic_prefix,
        settings.produce_timeout_s,
        max_message_bytes=settings.max_message_bytes,
    )
    await event_log.start()
    try:
        yield dead_letters(settings, event_log)
    finally:
        await event_log.stop()


@dataclass
class DeadLetterTools:
    """What `ocpi-hub dead-letters` uses: the live views (their writers apply
    a retried event), the dead-letter view and a producer for the outcome."""

    live: Views
    query: DeadLetterQuery
    event_log: KafkaEventLog
    us: Party


@asynccontextmanager
async def dead_letter_tools(settings: Settings) -> AsyncIterator[DeadLetterTools]:
    await _topics(settings)
    client = mongo_client(settings)
    engine = mysql_engine(settings, view_writer=True)
    event_log = KafkaEventLog(
        settings.kafka_bootstrap,
        settings.topic_prefix,
        settings.produce_timeout_s,
        max_message_bytes=settings.max_message_bytes,
    )
    try:
        live = views(client, settings.mongo_db, engine, afir_for=afir_for(settings))
        await event_log.start()
        yield DeadLetterTools(
            live, DeadLetterQuery(client[settings.mongo_db]), event_log, our_party(settings)
        )
    finally:
        await event_log.stop()
        client.close()
        engine.dispose()


@contextmanager
def sync_view_database(settings: Settings) -> Iterator[Database[Doc]]:
    """The live MongoDB views on the sync client, for a command whose queries
    are sync (``ocpi-hub dead-letters list``: the dead-letter view's query is
    shared with the projections process, which is sync)."""
    client = mongo_client(settings)
    try:
        yield client[settings.mongo_db]
    finally:
        client.close()


@asynccontextmanager
async def view_database(settings: Settings) -> AsyncIterator[AsyncDatabase[Doc]]:
    """The live MongoDB views, for a read-only command (the queries are async:
    the CLI runs it under ``asyncio.run``)."""
    client = async_mongo_client(settings, bounded=False)
    try:
        yield client[settings.mongo_db]
    finally:
        await client.close()


def until_signalled() -> asyncio.Event:
    """An event set on SIGINT or SIGTERM (call it inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
