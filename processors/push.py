"""Push our changes of one OCPI module to partners' Receiver interfaces: a
``ModulePusher`` per module (``PushModule``: locations here, sessions in
processors/session_push.py, CDRs in cdr_push.py, EVSE statuses in
evse_status_push.py), one lane per partner each.

Locations (mod_locations, "Receiver Interface": PUT and PATCH of a Location,
EVSE or Connector): when the platform, as CPO, changes one of its own
locations, every registered
partner that published a ``locations`` RECEIVER endpoint gets the same PUT or
PATCH, at the same level, at ``{url}/{country_code}/{party_id}/{location_id}
[/{evse_uid}[/{connector_id}]]``. Locations of other parties are never pushed.

Pure core: ``plan`` (event -> request), ``push_targets`` (partners ->
receivers), ``routing_headers``, ``classify`` (answer -> delivered, retry or
rejected), ``backoff_s`` and ``StaleGuard``. Shell: ``ModulePusher``, a
supervisor that keeps one ``PartnerLane`` per receiver of its module, and
each lane is a
Kafka consumer of ``ocpi.locations.v1`` with its own consumer group
(``{prefix}ocpi-hub-push-{partner_id}``), so a slow or failing partner lags
alone. See docs/adr/0008-pushing-locations-to-partners.md.

Delivery guarantees of a lane:

- in order per partition (so per location), one request at a time, each
  partition in its own task;
- at-least-once: an offset is committed only after its change was delivered
  (or refused by the partner, or skipped); a crash re-sends the uncommitted
  tail, and a replayed PUT or PATCH of the same value is harmless;
- a new partner's group starts where its registration was recorded (its
  record time, less ``push_start_margin_s`` for clocks that disagree), not
  wherever the lane happens to start: a change made just after a partner
  registered reaches it although the pusher notices new partners only every
  ``push_refresh_s``. That position is committed at once, so a restart
  before the first delivery skips nothing. A registration older than
  ``push_backfill_max_s`` (a lane added for a long-registered partner)
  starts that long ago instead, and one of unknown time at the end. A
  partner that registers again after unregistering resumes at its new
  registration, not at what its lane left behind. What came before, the
  partner gets with a GET of our Sender interfaces (the spec's initial sync);
- a PATCH the partner refuses as unknown (OCPI 2001/2003, HTTP 404) is
  followed by one PUT of the whole object at the same level, read from its
  view once the view has applied that PATCH's event; what that PUT carried
  is not sent again (docs/adr/0042).

The same lanes push other modules: a ``PushModule`` names the topic, the
event types, the plan and the endpoint (``processors/session_push.py`` for
our sessions); locations are the default.

Each partner gets our changes in the OCPI version it registered with
(docs/adr/0045): ``in_version`` converts a request with that version's edge
adapter (2.1.1: its object shapes, its token un-encoded, no routing
headers), and a partner whose version has no adapter for a module is not
a target of that module's lanes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Literal, Protocol, TypeVar
from urllib.parse import quote

import httpx
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from ocpi_hub.settings import Settings
from processors.evse_status import states_status_only
from producers.edge_context import context_out
from producers.hub_client_info import ClientInfoState, is_hub
from producers.partner_client import ModuleAnswer, send_module_request
from producers.partner_stats import PushTally, RedisPushStats
from producers.partners import PartnerState
from producers.url_policy import partner_http
from projections.position import position_field
from schemas.events import (
    LocationObjectPatched,
    LocationObjectPut,
    Party,
    parse_event,
)
from schemas.events.locations import location_key
from schemas.ocpi import merge
from schemas.ocpi.adapters import WIRES
from schemas.ocpi.common import fold, parse_ocpi_datetime
from schemas.ocpi.credentials import Role
from schemas.ocpi.hub_client_info import ConnectionStatus
from schemas.ocpi.versions import InterfaceRole, ModuleId
from schemas.ocpi.wire import CORE_VERSION, EdgeContext, Kind, WireVersion
from schemas.topics import LOCATIONS

log = structlog.get_logger(__name__)
T = TypeVar("T")

# --------------------------------------------------------------------------- #
# Pure core
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class WholeRef:
    """Where the whole object a PATCH changes is read from, should the
    partner refuse the PATCH as unknown: a view (``locations`` or
    ``sessions``), its document (the aggregate key) and, in a location, the
    EVSE and Connector the PATCH is about."""

    view: Literal["locations", "sessions"]
    key: str
    evse_uid: str | None = None
    connector_id: str | None = None


@dataclass(frozen=True)
class PushRequest:
    """One change to send to every receiver.

    ``path`` is appended to the receiver's locations URL; ``object_key`` (the
    folded ids of the object) is what ordering and staleness are about."""

    # POST: a new object at the receiver's URL itself (CDRs, mod_cdrs).
    # DELETE: the object withdrawn (tariffs, mod_tariffs); it has no body.
    method: Literal["PUT", "PATCH", "POST", "DELETE"]
    path: str
    body: dict[str, Any] | None
    object_key: str
    last_updated: datetime
    correlation_id: str
    event_id: str
    # Only the partner with this party gets it (a session goes to the eMSP
    # that owns its token); None: every receiver.
    audience: Party | None = None
    # A PATCH that can be repaired with a PUT of the whole object (None: not
    # repairable, e.g. a PUT, or a module without a view to read it from).
    whole: WholeRef | None = None
    # The event's place in its topic, set by the lane that read it.
    partition: int = -1
    offset: int = -1


def is_ours(country_code: str, party_id: str, us: Party) -> bool:
    return (
        country_code.upper() == us.country_code.upper() and party_id.upper() == us.party_id.upper()
    )


def _ids(
    country_code: str,
    party_id: str,
    location_id: str,
    evse_uid: str | None,
    connector_id: str | None,
) -> list[str]:
    ids = [country_code, party_id, location_id]
    if evse_uid is not None:
        ids.append(evse_uid)
        if connector_id is not None:
            ids.append(connector_id)
    return ids


def plan(event: object, us: Party) -> PushRequest | None:
    """What to send receivers for one event of ``ocpi.locations.v1``; None when
    the event is not a change of one of our own locations.

    A PUT or PATCH goes out as it was recorded, at the same level, except
    what only states an EVSE's status (an EVSE-level PATCH of ``status`` and
    ``last_updated``, a bare status report): every such statement of ours
    is resolved with our chargers' signals into ``EvseStatusResolved``, which
    the EVSE status lane pushes (processors/evse_status_push.py). Sending
    both sent each status change twice, and by two lanes that keep no order
    between them, so a partner could end on the owner's word rather than on
    the status resolved from it."""
    method: Literal["PUT", "PATCH"]
    if isinstance(event, LocationObjectPut):
        p = event.payload
        method, body, ids = "PUT", p.object, _ids(*_ref(p), p.evse_uid, p.connector_id)
        last_updated = p.last_updated
    elif isinstance(event, LocationObjectPatched):
        if states_status_only(event):
            return None
        p2 = event.payload
        method, body, ids = "PATCH", p2.patch, _ids(*_ref(p2), p2.evse_uid, p2.connector_id)
        last_updated = p2.last_updated
    else:
        return None
    if not is_ours(ids[0], ids[1], us):
        return None
    return PushRequest(
        method=method,
        path="".join("/" + quote(i, safe="") for i in ids),
        body=body,
        object_key="/".join(fold(i) for i in ids),
        last_updated=last_updated,
        correlation_id=event.correlation_id,
        event_id=str(event.event_id),
        whole=location_whole(location_key(*ids[:3]), ids) if method == "PATCH" else None,
    )


def location_whole(key: str, ids: list[str] | tuple[str, ...]) -> WholeRef:
    """Where a location-level, EVSE-level or Connector-level PATCH's whole
    object is read from: the location's view document, then its EVSE and
    Connector (``ids`` as in the URL: country, party, location[, evse[,
    connector]])."""
    return WholeRef(
        "locations",
        key,
        ids[3] if len(ids) > 3 else None,
        ids[4] if len(ids) > 4 else None,
    )


class _Ref(Protocol):
    @property
    def country_code(self) -> str: ...
    @property
    def party_id(self) -> str: ...
    @property
    def location_id(self) -> str: ...


def _ref(p: _Ref) -> tuple[str, str, str]:
    return p.country_code, p.party_id, p.location_id


@dataclass(frozen=True)
class PushTarget:
    """A lane's addressee: a partner, or one party behind a hub partner. Two
    targets are equal when nothing that a lane depends on changed (endpoint,
    token, routing)."""

    partner_id: str
    url: str
    sealed_token: str
    to: Party
    parties: frozenset[Party] = frozenset()  # every party of the partner, folded
    registered_at: datetime | None = None
    version: str = CORE_VERSION  # the OCPI version it registered with
    # Names the lane and its consumer group: the partner id, or for a party
    # behind a hub ``{partner_id}@{CC}-{PID}`` (party_lane_id).
    lane_id: str = ""

    @property
    def lane(self) -> str:
        return self.lane_id or self.partner_id


def party_lane_id(partner_id: str, party: Party) -> str:
    return f"{partner_id}@{fold(party.country_code)}-{fold(party.party_id)}"


def push_targets(
    partners: Iterable[PartnerState],
    module_id: str = ModuleId.LOCATIONS.value,
    to_role: Role = Role.EMSP,
    hub_reports: Iterable[ClientInfoState] = (),
) -> dict[str, PushTarget]:
    """Registered partners with a RECEIVER endpoint of the module and a token
    for us to present, by lane id. Messages go to the partner's ``to_role``
    role (eMSP for what a CPO pushes: locations, sessions, CDRs, tariffs; CPO
    for the tokens an eMSP pushes), else to its first role
    (transport_and_format, "Message Routing"); a partner without roles cannot
    be addressed and is left out.

    A HUB partner that reported ClientInfo (``hub_reports``,
    mod_hub_client_info) gets one lane per party it reports CONNECTED in
    ``to_role``, each addressed to that party through the hub (OCPI-to- its
    ids) and starting where the party was first CONNECTED; a party OFFLINE,
    SUSPENDED or PLANNED has no lane, so its lane pauses where it stood and
    resumes from there (docs/adr/0044). A hub that reported nothing keeps the
    one lane addressed to the hub itself (a broadcast push)."""
    reports: dict[str, list[ClientInfoState]] = {}
    for report in hub_reports:
        reports.setdefault(report.hub_partner_id, []).append(report)
    targets = {}
    for p in partners:
        url = p.endpoint(module_id, InterfaceRole.RECEIVER.value)
        if p.status != "registered" or url is None or not p.our_token_encrypted or not p.roles:
            continue
        version = p.version or CORE_VERSION
        edge = WIRES.get(version)
        if edge is None or (version != CORE_VERSION and module_id not in edge.modules):
            continue  # we cannot say this module in the partner's version
        if is_hub(p) and p.partner_id in reports:
            for report in reports[p.partner_id]:
                if report.role != to_role or report.status is not ConnectionStatus.CONNECTED:
                    continue
                lane = party_lane_id(p.partner_id, report.party)
                targets[lane] = PushTarget(
                    partner_id=p.partner_id,
                    url=url,
                    sealed_token=p.our_token_encrypted,
                    to=report.party,
                    parties=frozenset({report.party}),
                    registered_at=report.connected_since,
                    lane_id=lane,
                    version=version,
                )
            continue
        role = next((r for r in p.roles if r.role == to_role), p.roles[0])
        targets[p.partner_id] = PushTarget(
            partner_id=p.partner_id,
            url=url,
            sealed_token=p.our_token_encrypted,
            to=Party(country_code=role.country_code, party_id=role.party_id),
            parties=frozenset(
                Party(country_code=fold(r.country_code), party_id=fold(r.party_id)) for r in p.roles
            ),
            registered_at=p.registered_at,
            version=version,
        )
    return targets


def module_url(endpoint_url: str, path: str) -> str:
    """The URL of one push: the partner's endpoint URL as it gave it when the
    request has no path of its own (a CDR POST goes to ``{cdr_endpoint_url}``,
    mod_cdrs "POST method"; a server may route ``.../cdrs/`` and ``.../cdrs``
    apart), else the path joined with exactly one '/' between them."""
    return endpoint_url.rstrip("/") + path if path else endpoint_url


# The object a module's request carries, by the number of ids in its path.
_LOCATION_KINDS = {3: Kind.LOCATION, 4: Kind.EVSE, 5: Kind.CONNECTOR}


def in_version(
    request: PushRequest, module_id: str, edge: WireVersion, context: EdgeContext | None = None
) -> PushRequest:
    """``request`` as a partner of ``edge``'s version takes it: the body in
    its shape and, for 2.1.1 tokens, no ``?type=`` (its URLs have none; the
    body says the type); ``context``: what its Sessions and CDRs embed
    (producers/edge_context.py). Our own version's requests are left as
    they are."""
    if edge.version == CORE_VERSION:
        return request
    path = request.path if edge.token_type_in_url else request.path.partition("?")[0]
    if module_id == ModuleId.TOKENS.value:
        kind = Kind.TOKEN
    elif module_id == ModuleId.TARIFFS.value:
        kind = Kind.TARIFF
    elif module_id in _EMBEDDING:
        kind = _EMBEDDING[module_id]
    else:
        kind = _LOCATION_KINDS.get(path.count("/"), Kind.LOCATION)
    body = request.body
    if body is not None:
        body = edge.object_out(kind, body, patch=request.method == "PATCH", context=context)
    return replace(request, path=path, body=body)


# Modules whose objects a version may embed a Location in (2.1.1).
_EMBEDDING = {ModuleId.SESSIONS.value: Kind.SESSION, ModuleId.CDRS.value: Kind.CDR}


def routing_headers(
    request: PushRequest, *, us: Party, to: Party, request_id: str
) -> dict[str, str]:
    """Headers of a push, except Authorization (added by the partner client).
    Routing headers are required on functional modules (transport_and_format,
    "Message Routing"); the correlation id is the event's, so the change can be
    followed from the request that caused it."""
    return {
        "Content-Type": "application/json",
        "X-Request-ID": request_id,
        "X-Correlation-ID": request.correlation_id,
        "OCPI-from-country-code": us.country_code,
        "OCPI-from-party-id": us.party_id,
        "OCPI-to-country-code": to.country_code,
        "OCPI-to-party-id": to.party_id,
    }


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # the partner could not take it now: send it again later
    REJECTED = "rejected"  # the partner says the request is wrong: sending it again won't help


_RETRY_HTTP = frozenset({401, 408, 429})  # 401: a credentials update may be under way
_REJECTED_HUB = frozenset({4001})  # unknown receiver: the hub will not know it next time either


def classify(answer: ModuleAnswer) -> Outcome:
    """status_codes.asciidoc: 1xxx success, 2xxx client errors (ours: do not
    repeat), 3xxx server errors (theirs: repeat), 4xxx hub errors (repeat,
    except an unknown receiver). HTTP 2xx without an OCPI envelope counts as
    delivered: the HTTP layer accepted it and the spec asks senders to be
    lenient about what a PUT answers."""
    http, ocpi = answer.http_status, answer.ocpi_status
    if http is None or http >= 500 or http in _RETRY_HTTP:
        return Outcome.RETRY
    if not 200 <= http < 300:
        return Outcome.REJECTED
    if ocpi is None or 1000 <= ocpi < 2000:
        return Outcome.DELIVERED
    if 2000 <= ocpi < 3000 or ocpi in _REJECTED_HUB:
        return Outcome.REJECTED
    return Outcome.RETRY


# A partner that does not hold what a PATCH names answers 2003 (unknown
# location) or, as our own receivers do for a session, 2001 (PUT it first);
# some answer HTTP 404 (status_codes.asciidoc; transport_and_format, PATCH).
_UNKNOWN_OCPI = frozenset({2001, 2003})


def repair_wanted(request: PushRequest, answer: ModuleAnswer) -> bool:
    """Whether a refused request is followed by a PUT of the whole object:
    only a repairable PATCH, refused as unknown (docs/adr/0042). A PUT is
    never repaired, so one refused PATCH gets at most one PUT."""
    if request.method != "PATCH" or request.whole is None:
        return False
    http = answer.http_status
    if http == 404:
        return True
    return http is not None and 200 <= http < 300 and answer.ocpi_status in _UNKNOWN_OCPI


def whole_object(served: Mapping[str, Any] | None, ref: WholeRef) -> dict[str, Any] | None:
    """The object at the PATCH's level in a served view document (a Location
    with its EVSEs, a Session): the Location, one EVSE, one Connector, or the
    Session. None when the view does not hold it."""
    if served is None:
        return None
    if ref.evse_uid is None:
        return dict(served)
    if ref.connector_id is None:
        return merge.find_evse(served, ref.evse_uid)
    return merge.find_connector(served, ref.evse_uid, ref.connector_id)


def repair_request(refused: PushRequest, whole: Mapping[str, Any]) -> PushRequest:
    """The PUT that repairs a refused PATCH: the whole object at the same URL
    (same level), stamped with the object's own ``last_updated``; itself not
    repairable."""
    return replace(
        refused,
        method="PUT",
        body=dict(whole),
        last_updated=parse_ocpi_datetime(str(whole["last_updated"])),
        whole=None,
    )


def backoff_s(attempt: int, initial_s: float, max_s: float) -> float:
    """Delay before retry number ``attempt`` (1-based): initial, doubling, capped."""
    return min(max_s, initial_s * 2.0 ** min(max(attempt - 1, 0), 60))


class StaleGuard:
    """Never send a change older than one already delivered for the same object
    (transport_and_format, PATCH: do not replay a stale update over newer
    state). Equal ``last_updated`` is sent: a replay of the same change is
    harmless. Kept per lane, in memory: a best effort on top of the receiver's
    own ``last_updated`` check."""

    def __init__(self) -> None:
        self._delivered: dict[str, datetime] = {}

    def stale(self, request: PushRequest) -> bool:
        held = self._delivered.get(request.object_key)
        return held is not None and request.last_updated < held

    def delivered(self, request: PushRequest) -> None:
        held = self._delivered.get(request.object_key)
        if held is None or request.last_updated > held:
            self._delivered[request.object_key] = request.last_updated


# --------------------------------------------------------------------------- #
# Shell
# --------------------------------------------------------------------------- #

# A lane retries one change for as long as it takes (the lane is the unit of
# failure), so it may not poll Kafka for longer than the 5 minutes aiokafka
# allows by default; liveness is still checked by heartbeats (session timeout).
_MAX_POLL_INTERVAL_MS = 24 * 3600 * 1000
_BATCH = 100
_PUSHED_TYPES = frozenset({"LocationObjectPut", "LocationObjectPatched"})
_VIEW_POLL_S = 0.2  # how often a repair asks a lagging view again


@dataclass(frozen=True)
class PushModule:
    """What one pusher pushes: the topic it reads, the event types it plans,
    how (``plan``), and the partners' endpoint it sends to. Locations are the
    default; other modules (sessions) reuse every lane and retry rule."""

    name: str
    module_id: str
    topic: str
    event_types: frozenset[str]
    plan: Callable[[object, Party], PushRequest | None]
    # The consumer group of a partner's lane, and the log event that says the
    # lane is ready (distinct per module so a reader can wait for each).
    group_suffix: str = ""
    ready_event: str = "push_lane_ready"
    # The role of the partner a push is addressed to (its routing headers).
    to_role: Role = Role.EMSP


LOCATIONS_PUSH = PushModule(
    name="locations",
    module_id=ModuleId.LOCATIONS.value,
    topic=LOCATIONS.name,
    event_types=_PUSHED_TYPES,
    plan=plan,
)


class PartnerSource(Protocol):
    async def all(self) -> list[PartnerState]: ...


class HubReports(Protocol):
    """What hub partners report about the parties behind them (the
    hub_client_info view)."""

    async def all(self) -> list[ClientInfoState]: ...


class SharedRead(Generic[T]):
    """One read of a list (the partners, what hubs report) shared by every
    module's pusher: the six refresh together every ``push_refresh_s``, and
    each asking the view alone was six reads where one does. A caller
    within ``fresh_s`` of the last read gets its answer (the same list:
    read it, do not change it); callers while a read is under way wait for
    that read; a read that failed is not kept, so the next caller reads
    again. A caller cancelled while it waits does not cancel the read."""

    def __init__(
        self,
        read: Callable[[], Awaitable[list[T]]],
        fresh_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._fresh_s = fresh_s
        self._clock = clock
        self._pending: asyncio.Future[list[T]] | None = None
        self._started = 0.0

    async def all(self) -> list[T]:
        pending, now = self._pending, self._clock()
        stale = pending is None or (
            pending.done()
            and (
                pending.cancelled()
                or pending.exception() is not None
                or now - self._started >= self._fresh_s
            )
        )
        if stale:
            self._started = now
            pending = self._pending = asyncio.ensure_future(self._read())
        assert pending is not None
        return await asyncio.shield(pending)


class TokenUnsealer(Protocol):
    def decrypt(self, sealed: str) -> str: ...


class ViewRead(Protocol):
    async def read(self, key: str) -> tuple[dict[str, Any] | None, dict[str, int]]: ...


class WholeObjects:
    """Reads the whole objects a repair PUT is built from: the served object
    of a view document and the log positions the view has applied to it
    (``LocationViewQuery``, ``SessionViewQuery``)."""

    def __init__(self, views: Mapping[str, ViewRead]) -> None:
        self._views = dict(views)

    async def read(self, ref: WholeRef) -> tuple[dict[str, Any] | None, dict[str, int]] | None:
        """None when no view of that name is wired in."""
        view = self._views.get(ref.view)
        return None if view is None else await view.read(ref.key)


def lane_start_ms(
    registered_at: datetime | None, now_s: float, *, margin_s: float, backfill_max_s: float
) -> tuple[int | None, int | None]:
    """Where a lane starts, as record times (ms): for a group that never
    committed (the registration, but no more than ``backfill_max_s`` ago),
    and the registration itself (a committed position before it is from an
    earlier registration). None: unknown (start at the end; keep the
    committed position)."""
    if registered_at is None:
        return None, None
    registration = int((registered_at.timestamp() - margin_s) * 1000)
    return max(registration, int((now_s - backfill_max_s) * 1000)), registration


class _StartAtRegistration(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """On assignment, positions each partition where the partner's
    registration says (see the module docstring), committed at once."""

    def __init__(self, lane: PartnerLane) -> None:
        self._lane = lane

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._lane.commit()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._lane.position_assigned(assigned)


class PartnerLane:
    """Delivers every change of our locations to one partner, in log order."""

    def __init__(
        self,
        target: PushTarget,
        token: str,
        settings: Settings,
        us: Party,
        module: PushModule = LOCATIONS_PUSH,
        stats: RedisPushStats | None = None,
        wholes: WholeObjects | None = None,
    ) -> None:
        self.target = target
        self.module = module
        self.tally = PushTally()
        self._stats = stats
        self._wholes = wholes
        # After a repair PUT built from a view that had applied the lane's
        # topic up to an offset: object key -> (partition, offset). Changes
        # of that object (or of its EVSEs, Connectors) up to there are in
        # the PUT already and are not sent again: a session's PATCH appends
        # its charging periods, so sending it after the PUT would double them.
        self._repaired: dict[str, tuple[int, int]] = {}
        self._token = token
        self._settings = settings
        self._us = us
        self._guard = StaleGuard()
        self._done: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._commit_lock = asyncio.Lock()
        self._consumer: Any = None
        self._http: httpx.AsyncClient | None = None
        self._log = log.bind(partner_id=target.partner_id, lane=target.lane, module=module.name)
        # Set once the lane has its partitions and knows where to start: a
        # change recorded after that reaches this partner.
        self.ready = asyncio.Event()

    @property
    def group_id(self) -> str:
        suffix = self.module.group_suffix
        return self._settings.topic(f"ocpi-hub-push-{suffix}{self.target.lane}")

    async def run(self) -> None:
        s = self._settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            max_poll_interval_ms=_MAX_POLL_INTERVAL_MS,
        )
        self._consumer = consumer
        try:
            await consumer.start()
            consumer.subscribe([s.topic(self.module.topic)], listener=_StartAtRegistration(self))
            # The receiver's URL is checked at each connection, not only at
            # registration: a URL stored before the policy, or a host whose
            # DNS answer changed since, must not reach a private address.
            async with partner_http(
                s.outbound_timeout_s, allow_private=s.url_policy_allow_private
            ) as http:
                self._http = http
                self._log.info("push_lane_started", url=self.target.url, group=self.group_id)
                while True:
                    batches = await consumer.getmany(timeout_ms=s.push_poll_ms, max_records=_BATCH)
                    if batches:
                        await asyncio.gather(
                            *(self._deliver_partition(tp, ms) for tp, ms in batches.items())
                        )
                        await self.commit()
                        await self.save_tally()
        finally:
            try:
                await self.commit()
            finally:
                await consumer.stop()
                self._log.info("push_lane_stopped")

    async def position_assigned(self, assigned: set[TopicPartition]) -> None:
        consumer = self._consumer
        # The fetcher runs while this waits for the broker: nothing of these
        # partitions may be handed out before they are positioned.
        consumer.pause(*assigned)
        try:
            await self._position(assigned)
        finally:
            consumer.resume(*assigned)

    async def _position(self, assigned: set[TopicPartition]) -> None:
        consumer = self._consumer
        s = self._settings
        fresh_ms, registration_ms = lane_start_ms(
            self.target.registered_at,
            time.time(),
            margin_s=s.push_start_margin_s,
            backfill_max_s=s.push_backfill_max_s,
        )
        moved: dict[TopicPartition, int] = {}
        for tp in assigned:
            committed = await consumer.committed(tp)
            at_ms = fresh_ms if committed is None else registration_ms
            start = None if at_ms is None else await self._offset_at(tp, at_ms)
            if committed is None:
                if start is None:
                    await consumer.seek_to_end(tp)
                    start = await consumer.position(tp)
                moved[tp] = start
            elif start is not None and start > committed:
                moved[tp] = start  # what the lane left before this registration
            if tp in moved:
                consumer.seek(tp, moved[tp])
        if moved:
            await consumer.commit(moved)
            self._committed.update(moved)
            self._log.info(
                self.module.ready_event,
                partitions={f"{tp.topic}:{tp.partition}": o for tp, o in moved.items()},
            )
        self.ready.set()

    async def _offset_at(self, tp: TopicPartition, at_ms: int) -> int:
        """The first offset recorded at or after ``at_ms``; the end when none was."""
        found = await self._consumer.offsets_for_times({tp: at_ms})
        hit = found.get(tp)
        if hit is not None:
            return int(hit.offset)
        return int((await self._consumer.end_offsets([tp]))[tp])

    async def save_tally(self) -> None:
        """The tally for the dashboard, when it changed; a failure to write
        it never holds up the pushes."""
        if self._stats is None or not self.tally.dirty:
            return
        try:
            await self._stats.save(self.target.lane, self.module.name, self.tally)
        except Exception as exc:
            self._log.warning("push_stats_not_saved", error=type(exc).__name__)

    async def commit(self) -> None:
        """Commit what was delivered; a failure (group left, broker away) is
        logged and the changes are sent again later (at-least-once)."""
        async with self._commit_lock:
            pending = {tp: o for tp, o in self._done.items() if self._committed.get(tp) != o}
            if not pending or self._consumer is None:
                return
            try:
                await self._consumer.commit(pending)
                self._committed.update(pending)
            except KafkaError as exc:
                self._log.warning("push_commit_failed", error=type(exc).__name__)
                for tp in pending:
                    self._done.pop(tp, None)

    async def _deliver_partition(
        self, tp: TopicPartition, messages: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        for message in messages:
            request = self._decode(message)
            if request is not None:
                if self._guard.stale(request):
                    self._log.info(
                        "push_stale_skipped", event_id=request.event_id, object=request.object_key
                    )
                elif self._in_repair(request):
                    self._log.info(
                        "push_repaired_skipped",
                        event_id=request.event_id,
                        object=request.object_key,
                    )
                else:
                    await self._deliver(request)
            self._done[tp] = message.offset + 1

    def _in_repair(self, request: PushRequest) -> bool:
        """Whether a repair PUT sent earlier carried this change already (the
        object or one containing it, read from a view past this offset)."""
        if not self._repaired:
            return False
        key = request.object_key
        for held, (partition, offset) in list(self._repaired.items()):
            if partition != request.partition:
                continue
            if offset < request.offset:
                del self._repaired[held]  # the lane is past it: nothing more to skip
            elif key == held or key.startswith(held + "/"):
                return True
        return False

    def _decode(self, message: ConsumerRecord[bytes, bytes]) -> PushRequest | None:
        event_type = dict(message.headers or ()).get("event_type", b"").decode()
        if event_type and event_type not in self.module.event_types:
            return None
        try:
            event = parse_event(message.value or b"")
        except ValueError:
            # A newer producer's event type, or a record that is not an event:
            # never block the lane on it.
            self._log.warning(
                "push_undecodable", partition=message.partition, offset=message.offset
            )
            return None
        request = self.module.plan(event, self._us)
        if request is not None:
            request = replace(request, partition=message.partition, offset=message.offset)
        if request is not None and request.audience is not None:
            audience = Party(
                country_code=fold(request.audience.country_code),
                party_id=fold(request.audience.party_id),
            )
            if audience not in self.target.parties:
                return None
        return request

    async def _deliver(self, request: PushRequest) -> None:
        bound = self._log.bind(
            event_id=request.event_id,
            correlation_id=request.correlation_id,
            method=request.method,
            object=request.object_key,
        )
        sent = await self._send(request, bound)
        if sent is None:
            return  # abandoned (logged and tallied)
        answer, fields = sent
        if classify(answer) is Outcome.DELIVERED:
            self._guard.delivered(request)
            self.tally.ok(time.time())
            bound.info("push_delivered", **fields)
            return
        if repair_wanted(request, answer) and self._wholes is not None:
            bound.warning("push_refused_as_unknown", **fields)
            await self._repair(request, bound)
            return
        self.tally.failed(time.time(), "rejected", *_failure(answer))
        bound.warning("push_rejected", **fields)

    async def _repair(self, refused: PushRequest, bound: Any) -> None:
        """Send one PUT of the whole object the partner did not know, read
        from its view once the view has applied the refused PATCH's event; a
        PUT refused too, or an object the view cannot give, is rejected."""
        found = await self._whole_after(refused, bound)
        if found is None:
            self.tally.failed(time.time(), "rejected", None, None, "not repaired: view unavailable")
            return
        whole, applied = found
        if whole is None:
            self.tally.failed(time.time(), "rejected", None, None, "not repaired: not in the view")
            bound.warning("push_not_repaired", reason="the view does not hold the object")
            return
        put = repair_request(refused, whole)
        repair_log = bound.bind(method="PUT", repair_of=refused.event_id)
        sent = await self._send(put, repair_log)
        if sent is None:
            return
        answer, fields = sent
        if classify(answer) is Outcome.DELIVERED:
            self._guard.delivered(put)
            self._repaired[put.object_key] = (refused.partition, applied)
            self.tally.repaired_by_put(time.time())
            repair_log.info("push_repaired", view_offset=applied, **fields)
            return
        self.tally.failed(time.time(), "rejected", *_failure(answer))
        repair_log.warning("push_repair_rejected", **fields)

    async def _whole_after(
        self, refused: PushRequest, bound: Any
    ) -> tuple[dict[str, Any] | None, int] | None:
        """The whole object from the view, once the view's position on the
        lane's partition is at or past the refused change (the view is
        written by the projections, which may lag); None when it is not
        there within ``push_repair_view_wait_s``. With the offset it had
        applied."""
        assert self._wholes is not None and refused.whole is not None
        position = position_field(self.module.topic, refused.partition)
        deadline = time.monotonic() + self._settings.push_repair_view_wait_s
        applied: int | None = None
        while True:
            try:
                read = await self._wholes.read(refused.whole)
            except Exception as exc:
                bound.warning("push_repair_view_unreadable", error=type(exc).__name__)
                read = None
            if read is not None:
                served, positions = read
                applied = positions.get(position)
                if applied is not None and applied >= refused.offset:
                    return whole_object(served, refused.whole), applied
            if time.monotonic() >= deadline:
                bound.warning(
                    "push_not_repaired",
                    reason="the view did not reach the change in time",
                    view_offset=applied,
                    offset=refused.offset,
                )
                return None
            await asyncio.sleep(_VIEW_POLL_S)

    async def _location(self, country_code: str, party_id: str, location_id: str) -> Any:
        """Our Location as the location view serves it (None without one)."""
        if self._wholes is None:
            return None
        key = location_key(country_code, party_id, location_id)
        read = await self._wholes.read(WholeRef("locations", key))
        return None if read is None else read[0]

    async def _send(self, request: PushRequest, bound: Any) -> tuple[ModuleAnswer, Any] | None:
        """Send one request until it is answered with something other than
        a retry (delivered or refused: that answer and the log fields), or
        until ``push_give_up_after_s`` (None: abandoned, tallied and logged)."""
        assert self._http is not None
        s = self._settings
        edge = WIRES[self.target.version]
        context = None
        if self.module.module_id in _EMBEDDING:
            # Only our own sessions and CDRs are pushed: the location is ours.
            us = (self._us.country_code, self._us.party_id)
            context = await context_out(edge, request.body, us, self._location)
        request = in_version(request, self.module.module_id, edge, context)
        url = module_url(self.target.url, request.path)
        attempt = 0
        first_failure: float | None = None
        while True:
            attempt += 1
            request_id = str(uuid.uuid4())
            started = time.monotonic()
            headers = routing_headers(
                request,
                us=self._us,
                to=request.audience or self.target.to,
                request_id=request_id,
            )
            if not edge.routing_headers:
                headers = {k: v for k, v in headers.items() if not k.startswith("OCPI-")}
            answer = await send_module_request(
                self._http,
                request.method,
                url,
                token=self._token,
                headers=headers,
                json=request.body,
                raw_token=edge.raw_token,
            )
            fields = {
                "request_id": request_id,
                "attempt": attempt,
                "http_status": answer.http_status,
                "ocpi_status": answer.ocpi_status,
                "error": answer.error,
                "status_message": partner_message(answer),
                "ms": round((time.monotonic() - started) * 1000, 1),
            }
            if classify(answer) is not Outcome.RETRY:
                return answer, fields
            now = time.monotonic()
            first_failure = first_failure or now
            if s.push_give_up_after_s and now - first_failure >= s.push_give_up_after_s:
                self.tally.failed(time.time(), "abandoned", *_failure(answer))
                bound.error("push_abandoned", **fields)
                return None
            self.tally.failed(time.time(), "retrying", *_failure(answer))
            delay = backoff_s(attempt, s.push_retry_initial_s, s.push_retry_max_s)
            bound.warning("push_retry", delay_s=delay, **fields)
            await self.commit()  # keep the progress made before this change
            await self.save_tally()  # a partner failing shows while it fails
            await asyncio.sleep(delay)


def partner_message(answer: ModuleAnswer) -> str | None:
    """The partner's ``status_message`` (what it says it refused and why),
    cut short: it is the partner's text about our object, never our token."""
    body = answer.body
    message = body.get("status_message") if isinstance(body, dict) else None
    return str(message)[:300] if message else None


def _failure(answer: ModuleAnswer) -> tuple[int | None, int | None, str | None]:
    return answer.http_status, answer.ocpi_status, answer.error


class ModulePusher:
    """Pushes one module's changes (``module``): keeps one lane per push
    target, re-reading the partners (and what hubs report, ``hub_reports``)
    every ``push_refresh_s``: starts lanes for new targets, stops lanes of
    partners that unregistered or dropped the endpoint and of parties a hub
    no longer reports CONNECTED, restarts a lane whose endpoint, token or
    roles changed (it resumes from its group's committed offsets) and one
    that failed (Kafka unreachable, ...). ``lanes`` is keyed by lane id:
    the partner id, or ``party_lane_id`` for a party behind a hub."""

    def __init__(
        self,
        settings: Settings,
        partners: PartnerSource,
        vault: TokenUnsealer,
        module: PushModule = LOCATIONS_PUSH,
        stats: RedisPushStats | None = None,
        wholes: WholeObjects | None = None,
        hub_reports: HubReports | None = None,
    ) -> None:
        self._settings = settings
        self._hub_reports = hub_reports
        self._module = module
        self._stats = stats
        self._wholes = wholes
        self._partners = partners
        self._vault = vault
        self._us = Party(country_code=settings.party_country_code, party_id=settings.party_id)
        self.lanes: dict[str, PartnerLane] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def run(self, stop: asyncio.Event) -> None:
        log.info("push_started", us=f"{self._us.country_code}-{self._us.party_id}")
        try:
            while not stop.is_set():
                await self.refresh()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._settings.push_refresh_s)
        finally:
            for lane_id in list(self._tasks):
                await self._stop_lane(lane_id, "shutdown")

    async def refresh(self) -> None:
        try:
            partners = await self._partners.all()
            reports = await self._hub_reports.all() if self._hub_reports is not None else []
        except Exception as exc:
            log.warning("push_partners_unreadable", error=type(exc).__name__)
            return
        wanted = push_targets(partners, self._module.module_id, self._module.to_role, reports)
        for lane_id, task in list(self._tasks.items()):
            if task.done():
                error = None if task.cancelled() else task.exception()
                log.warning(
                    "push_lane_failed",
                    partner_id=self.lanes[lane_id].target.partner_id,
                    lane=lane_id,
                    error=repr(error),
                )
                await self._stop_lane(lane_id, "failed")
            elif lane_id not in wanted:
                # A party a hub reports offline lands here too: its lane
                # commits what it delivered and stops; it resumes from there.
                await self._stop_lane(lane_id, "no longer a receiver")
            elif wanted[lane_id] != self.lanes[lane_id].target:
                await self._stop_lane(lane_id, "connection changed")
        for lane_id, target in wanted.items():
            if lane_id not in self._tasks:
                self._start_lane(target)

    def _start_lane(self, target: PushTarget) -> None:
        try:
            token = self._vault.decrypt(target.sealed_token)
        except Exception as exc:
            log.error(
                "push_token_unreadable", partner_id=target.partner_id, error=type(exc).__name__
            )
            return
        lane = PartnerLane(
            target, token, self._settings, self._us, self._module, self._stats, self._wholes
        )
        self.lanes[target.lane] = lane
        self._tasks[target.lane] = asyncio.create_task(
            lane.run(), name=f"push-{self._module.group_suffix}{target.lane}"
        )

    async def _stop_lane(self, lane_id: str, reason: str) -> None:
        task = self._tasks.pop(lane_id)
        lane = self.lanes.pop(lane_id, None)
        task.cancel()
        await asyncio.wait([task])
        partner_id = lane.target.partner_id if lane is not None else lane_id
        log.info("push_lane_ended", partner_id=partner_id, lane=lane_id, reason=reason)
