"""Push the AFIR feed's deltas to the national access point
(``OCPI_HUB_AFIR_PUSH_URL``; docs/afir.md, docs/adr/0048).

Each event about one of our locations (a PUT or PATCH, a resolved EVSE
status) or one of our tariffs becomes one POST of DATEX II v3 JSON: the
static publication of the sites it changed (for a PUT, a PATCH or a
tariff) and then the dynamic one (always). What is sent is read from the
AFIR view (projections/mongo/afir.py) once the view has applied that very
event (its position in the site's or tariff's document), so a delta is
exactly what a pull would show at that point.

Delivery: one Kafka consumer in its own group, one event at a time in log
order per partition (the location topics are keyed by location, so every
change of one EVSE keeps its order); an offset is committed only once its
delta was delivered (a 2xx answer), so at least once; a failure (network,
non-2xx, our URL policy refusing the address) is retried after initial,
2x, 4x ... capped, and nothing after it in its partition is sent first. A
fresh group starts at the end of the topics: what came before, the access
point pulls (``GET /afir/v3/*``).

``plan`` is pure: an event -> which documents to wait for and what to send.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from ocpi_hub.settings import Settings
from producers import afir
from producers.url_policy import partner_http
from projections.mongo.afir import AfirViewQuery
from projections.position import position_field
from schemas.events import (
    EvseStatusResolved,
    LocationObjectPatched,
    LocationObjectPut,
    Party,
    TariffDeleted,
    TariffPut,
    parse_event,
)
from schemas.ocpi.common import fold
from schemas.topics import EVSE_STATUS, LOCATIONS, TARIFFS

log = structlog.get_logger(__name__)

Doc = dict[str, Any]


@dataclass(frozen=True)
class Planned:
    """What one event asks of the pusher: the site (``location``) or the
    tariff (``tariff``) whose document must have applied the event, and
    whether the static publication goes out too."""

    location: str | None
    tariff: str | None
    static: bool


def plan(event: object, us: Party) -> Planned | None:
    """None for anything that is not about one of our locations or tariffs."""
    if isinstance(event, LocationObjectPut | LocationObjectPatched | EvseStatusResolved):
        p = event.payload
        if fold(p.country_code) != fold(us.country_code) or fold(p.party_id) != fold(us.party_id):
            return None
        return Planned(event.aggregate_key, None, not isinstance(event, EvseStatusResolved))
    if isinstance(event, TariffPut | TariffDeleted):
        t = event.payload
        if fold(t.country_code) != fold(us.country_code) or fold(t.party_id) != fold(us.party_id):
            return None
        return Planned(None, event.aggregate_key, True)
    return None


@dataclass
class Sent:
    """What was last delivered per site (``idG``): the static version and
    the dynamic record. The view is read at or after each event, so when
    events come faster than deliveries several of them find the same
    state; it is sent once."""

    static: dict[str, str] = field(default_factory=dict)
    dynamic: dict[str, Doc] = field(default_factory=dict)


def deltas(
    publisher: afir.Publisher, sites: list[Doc], static: bool, now: datetime, sent: Sent
) -> tuple[list[Doc], Sent]:
    """The publications to send for ``sites`` (their view documents): the
    static one first when asked and a site's version is not the one last
    sent, then the dynamic one with the sites whose record (a withdrawn
    site's: its withdrawal) is not the one last sent; none for sites that
    were never published. Returns them and what will have been sent once
    they are delivered."""
    shown = [d for d in sites if d.get("static") and d.get("dynamic")]
    withdrawn = [d for d in sites if d.get("_withdrawn") and d.get("dynamic")]
    out: list[Doc] = []
    after = Sent(dict(sent.static), dict(sent.dynamic))
    new_static = [
        d["static"] for d in shown if sent.static.get(d["static"]["idG"]) != d["static"]["versionG"]
    ]
    if static and new_static:
        out.append(afir.table_publication(publisher, new_static, now))
        after.static.update({r["idG"]: r["versionG"] for r in new_static})
    new_dynamic = [
        d["dynamic"]
        for d in shown + withdrawn
        if sent.dynamic.get(d["dynamic"]["reference"]["idG"]) != d["dynamic"]
    ]
    if new_dynamic:
        out.append(afir.status_publication(publisher, new_dynamic, now))
        after.dynamic.update({r["reference"]["idG"]: r for r in new_dynamic})
    for d in withdrawn:  # published again later, its static record goes out again
        after.static.pop(d["dynamic"]["reference"]["idG"], None)
    return out, after


def client_auth(settings: Settings) -> httpx.Auth | None:
    password = settings.afir_push_password.get_secret_value()
    if settings.afir_push_user and password:
        return httpx.BasicAuth(settings.afir_push_user, password)
    return None


def client_headers(settings: Settings) -> dict[str, str]:
    token = settings.afir_push_token.get_secret_value()
    if token:
        return {"Authorization": f"Bearer {token}"}
    return {}


class AfirPusher:
    """The shell: a consumer, the view, an HTTP client (our URL policy's)."""

    def __init__(
        self,
        settings: Settings,
        view: AfirViewQuery,
        publisher: afir.Publisher,
        us: Party,
    ) -> None:
        self._s = settings
        self._view = view
        self._publisher = publisher
        self._us = us
        self.delivered = 0
        self._sent = Sent()

    @property
    def group_id(self) -> str:
        return f"{self._s.topic_prefix}ocpi-hub-afir-push"

    async def run(self, stop: asyncio.Event) -> None:
        s = self._s
        if not s.afir_push_url:
            await stop.wait()
            return
        topics = [s.topic(t.name) for t in (LOCATIONS, EVSE_STATUS, TARIFFS)]
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=s.kafka_bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
        )
        await consumer.start()
        log.info("afir_push_started", group=self.group_id)
        try:
            async with partner_http(
                s.afir_push_timeout_s, allow_private=s.url_policy_allow_private
            ) as http:
                while not stop.is_set():
                    batches = await consumer.getmany(timeout_ms=s.afir_push_poll_ms)
                    for tp, messages in batches.items():
                        for message in messages:
                            await self._deliver(http, tp, message, stop)
                            if stop.is_set():
                                return
                    if batches:
                        await consumer.commit()
        finally:
            await consumer.stop()

    async def _deliver(
        self,
        http: httpx.AsyncClient,
        tp: TopicPartition,
        message: ConsumerRecord[bytes, bytes],
        stop: asyncio.Event,
    ) -> None:
        if message.value is None:
            return
        try:
            event = parse_event(message.value)
        except Exception as exc:  # an event no view can read is the projections' to quarantine
            log.warning("afir_push_undecodable", error_type=type(exc).__name__)
            return
        planned = plan(event, self._us)
        if planned is None:
            return
        topic = tp.topic.removeprefix(self._s.topic_prefix)
        field = position_field(topic, tp.partition)
        attempt = 0
        while not stop.is_set():
            attempt += 1
            try:
                sites = await self._sites_after(planned, field, message.offset)
                bodies, sent = deltas(
                    self._publisher, sites, planned.static, datetime.now(UTC), self._sent
                )
                for body in bodies:
                    await self._post(http, body)
                self._sent = sent
                self.delivered += len(bodies)
                return
            except (httpx.HTTPError, TimeoutError, _NotDeliveredError) as exc:
                delay = min(
                    self._s.afir_push_retry_max_s,
                    self._s.afir_push_retry_initial_s * 2.0 ** min(attempt - 1, 30),
                )
                log.warning(
                    "afir_push_retry",
                    error_type=type(exc).__name__,
                    error=str(exc)[:200],
                    attempt=attempt,
                    retry_in_s=delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)

    async def _sites_after(self, planned: Planned, field: str, offset: int) -> list[Doc]:
        """The site documents the event concerns, once the view applied it."""
        deadline = time.monotonic() + self._s.afir_push_view_wait_s
        while True:
            if planned.location is not None:
                doc = await self._view.site(planned.location)
                if doc is not None and (doc.get("_positions") or {}).get(field, -1) >= offset:
                    return [doc]
            elif planned.tariff is not None and await self._view.tariff_applied(
                planned.tariff, field, offset
            ):
                return await self._view.sites_naming(planned.tariff)
            if time.monotonic() > deadline:
                raise TimeoutError("the AFIR view has not applied the event yet")
            await asyncio.sleep(0.05)

    async def _post(self, http: httpx.AsyncClient, body: Doc) -> None:
        answer = await http.post(
            self._s.afir_push_url,
            json=body,
            headers=client_headers(self._s),
            auth=client_auth(self._s) or httpx.USE_CLIENT_DEFAULT,
        )
        if not 200 <= answer.status_code < 300:
            raise _NotDeliveredError(f"HTTP {answer.status_code}")


class _NotDeliveredError(Exception):
    pass
