"""POST the one result of a request we decided as CPO to the partner's
``response_url``: a CommandResult (mod_commands; processors/command_callbacks.py)
or a charging profile result (mod_charging_profiles;
processors/charging_profile_callbacks.py). Each kind is a ``CallbackKind``:
its topic, the decided event it reads and the body it sends; the delivery
rules are the same for both (docs/adr/0017, docs/adr/0043).

A consumer of the kind's topic in its own group (``{prefix}{group}``) in
the ``ocpi-hub push`` process. For every decided event it POSTs the body
with only our token for that partner and fresh request and correlation
ids: nothing of the partner's original request is sent back.

- Transport errors, HTTP 5xx (and 401/408/429) are retried with the push
  backoff until ``command_callback_give_up_s`` has passed since the first
  failure; then ``{kind}_callback_abandoned`` is logged.
- An OCPI error answer (HTTP 4xx, or a status_code outside 1xxx) is final
  and logged.
- At most once per request: a Redis marker per request id is set once the
  result was delivered (or refused, or abandoned) and checked before
  sending, and offsets are committed after that. A decision read twice (a
  re-run of the results processor, a restart here) is not sent twice.

Never logs the token or any header.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from ocpi_hub.settings import Settings
from processors.push import Outcome, TokenUnsealer, backoff_s, classify
from producers.partner_client import ModuleAnswer, send_module_request
from producers.partners import PartnerState
from producers.url_policy import UrlRefusedError, check_url, partner_http
from schemas.events import EventMeta, Party, parse_event
from schemas.ocpi.adapters import WIRES
from schemas.ocpi.common import fold
from schemas.ocpi.credentials import Role
from schemas.ocpi.wire import CORE_VERSION, Kind, WireVersion
from schemas.topics import TopicSpec

log = structlog.get_logger(__name__)

_MAX_POLL_INTERVAL_MS = 24 * 3600 * 1000
_BATCH = 100
# Delivered markers are kept long enough to outlive any re-read of the log
# by this consumer group.
_MARKER_TTL_S = 90 * 24 * 3600


@dataclass(frozen=True)
class CallbackKind:
    """What one kind of decided result is: where it is read from and what
    is POSTed. Every function is pure."""

    name: str  # "command", "charging_profile": the log events' prefix
    topic: TopicSpec
    event_type: type[EventMeta]  # the decided event
    group: str  # the consumer group, before the topic prefix
    marker: str  # the Redis markers' namespace
    key: Callable[[Any], str]  # what is sent at most once (a request id, an event id)
    partner_id: Callable[[Any], str]
    # Where to send it: the request's response_url, or an endpoint of the
    # partner's (None: it has none, nothing is sent).
    url: Callable[[Any, PartnerState], str | None]
    body: Callable[[Any], dict[str, Any]]
    method: str = "POST"
    # Results nobody outside is waiting for (our operator's own commands).
    internal: Callable[[Any], bool] = lambda event: False
    # Fields of the event worth a log line (the result, ...).
    fields: Callable[[Any], dict[str, Any]] = lambda event: {}
    # The body's object for the partner's OCPI version (docs/adr/0045);
    # None: sent as our model has it.
    wire_kind: Kind | None = None


def callback_headers(us: Party, to: Party | None) -> dict[str, str]:
    """Fresh ids, and the routing headers (from us to the eMSP); the
    Authorization header is added by ``send_module_request``."""
    headers = {
        "Content-Type": "application/json",
        "X-Request-ID": str(uuid.uuid4()),
        "X-Correlation-ID": str(uuid.uuid4()),
        "OCPI-from-country-code": us.country_code,
        "OCPI-from-party-id": us.party_id,
    }
    if to is not None:
        headers["OCPI-to-country-code"] = to.country_code
        headers["OCPI-to-party-id"] = to.party_id
    return headers


def emsp_party(partner: PartnerState) -> Party | None:
    role = next((r for r in partner.roles if r.role == Role.EMSP), None)
    if role is None:
        return None
    return Party(country_code=fold(role.country_code), party_id=fold(role.party_id))


class PartnerLookup(Protocol):
    async def get(self, partner_id: str) -> PartnerState | None: ...


class DeliveredMarks(Protocol):
    async def delivered(self, request_id: str) -> bool: ...

    async def mark(self, request_id: str, outcome: str) -> None: ...


@dataclass
class RedisDeliveredMarks:
    redis: Any  # redis.asyncio.Redis
    prefix: str = ""
    namespace: str = "commands:callback"

    def _key(self, request_id: str) -> str:
        return f"{self.prefix}ocpi-hub:{self.namespace}:{request_id}"

    async def delivered(self, request_id: str) -> bool:
        return bool(await self.redis.exists(self._key(request_id)))

    async def mark(self, request_id: str, outcome: str) -> None:
        await self.redis.set(self._key(request_id), outcome, ex=_MARKER_TTL_S)


class ResultCallbackSender:
    """Reads the decisions of one kind and POSTs them, one partition at a
    time in order, partitions side by side."""

    def __init__(
        self,
        settings: Settings,
        partners: PartnerLookup,
        vault: TokenUnsealer,
        marks: DeliveredMarks,
        kind: CallbackKind,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        """``http``: a client for ``deliver`` outside ``run`` (tests); ``run``
        makes its own."""
        self.kind = kind
        self._settings = settings
        self._partners = partners
        self._vault = vault
        self._marks = marks
        self._us = Party(
            country_code=fold(settings.party_country_code), party_id=fold(settings.party_id)
        )
        self._http: httpx.AsyncClient | None = http
        self._stop = asyncio.Event()  # replaced by run()'s
        self.ready = asyncio.Event()

    @property
    def group_id(self) -> str:
        return self._settings.topic(self.kind.group)

    async def supervise(self, stop: asyncio.Event) -> None:
        """``run`` until ``stop``, started again after a failure (Kafka
        unreachable, ...) so the push process's other lanes are not taken down."""
        while not stop.is_set():
            try:
                await self.run(stop)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(f"{self.kind.name}_callbacks_failed", error=type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2.0)

    async def run(self, stop: asyncio.Event) -> None:
        s = self._settings
        self._stop = stop
        consumer = AIOKafkaConsumer(
            s.topic(self.kind.topic.name),
            bootstrap_servers=s.kafka_bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            # A result decided before this group first ran is still owed.
            auto_offset_reset="earliest",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            max_poll_interval_ms=_MAX_POLL_INTERVAL_MS,
        )
        await consumer.start()
        log.info(f"{self.kind.name}_callbacks_started", group=self.group_id)
        try:
            # response_url and partner endpoints: each connection checked and
            # pinned (url_policy).
            async with partner_http(
                s.outbound_timeout_s, allow_private=s.url_policy_allow_private
            ) as http:
                self._http = http
                while not stop.is_set():
                    batches = await consumer.getmany(timeout_ms=s.push_poll_ms, max_records=_BATCH)
                    if consumer.assignment():
                        self.ready.set()
                    if not batches:
                        continue
                    done = await asyncio.gather(
                        *(self._partition(tp, ms) for tp, ms in batches.items())
                    )
                    try:
                        await consumer.commit(dict(done))
                    except KafkaError as exc:
                        log.warning(
                            f"{self.kind.name}_callbacks_commit_failed", error=type(exc).__name__
                        )
        finally:
            await consumer.stop()

    async def _partition(
        self, tp: TopicPartition, messages: list[ConsumerRecord[bytes, bytes]]
    ) -> tuple[TopicPartition, int]:
        for message in messages:
            event = self._decode(message)
            if event is not None and await self.deliver(event) == "interrupted":
                return tp, message.offset  # sent again after the restart
        return tp, messages[-1].offset + 1

    def _decode(self, message: ConsumerRecord[bytes, bytes]) -> Any | None:
        wanted = self.kind.event_type
        event_type = dict(message.headers or ()).get("event_type", b"").decode()
        if event_type and event_type != wanted.__name__:
            return None
        try:
            event = parse_event(message.value or b"")
        except ValueError:
            log.warning(
                f"{self.kind.name}_callback_undecodable",
                partition=message.partition,
                offset=message.offset,
            )
            return None
        return event if isinstance(event, wanted) else None

    def _log(self, what: str) -> str:
        return f"{self.kind.name}_callback_{what}"

    async def deliver(self, event: Any) -> str:
        """Send one result (unless it was already); return the outcome."""
        kind = self.kind
        request_id = kind.key(event)
        partner_id = kind.partner_id(event)
        bound = log.bind(
            **{f"{kind.name}_id": request_id},
            partner_id=partner_id,
            event_id=str(event.event_id),
        )
        if kind.internal(event):
            return "operator"
        if await self._marks.delivered(request_id):
            bound.info(self._log("already_sent"))
            return "already"
        partner = await self._partners.get(partner_id)
        token = None
        if partner is not None and partner.status == "registered" and partner.our_token_encrypted:
            try:
                token = self._vault.decrypt(partner.our_token_encrypted)
            except Exception as exc:
                bound.error(self._log("token_unreadable"), error=type(exc).__name__)
        if partner is None or token is None:
            bound.error(self._log("no_partner"))
            await self._marks.mark(request_id, "no_partner")
            return "no_partner"
        url = kind.url(event, partner)
        if url is None:
            bound.warning(self._log("no_endpoint"))
            await self._marks.mark(request_id, "no_endpoint")
            return "no_endpoint"
        edge = WIRES.get(partner.version or CORE_VERSION) or WIRES[CORE_VERSION]
        outcome = await self._send(event, url, token, emsp_party(partner), bound, edge)
        if outcome == "interrupted":
            return outcome
        await self._marks.mark(request_id, outcome)
        return outcome

    async def _send(
        self,
        event: Any,
        url: str,
        token: str,
        to: Party | None,
        bound: Any,
        edge: WireVersion,
    ) -> str:
        assert self._http is not None
        s = self._settings
        try:
            # Checked when the URL came in; again here, as the host's
            # addresses may have changed since (docs/adr/0039).
            await check_url(url, allow_private=s.url_policy_allow_private, what="response_url")
        except UrlRefusedError as exc:
            bound.error(self._log("url_refused"), reason=str(exc))
            return "refused"
        body = self.kind.body(event)
        if self.kind.wire_kind is not None:
            body = edge.object_out(self.kind.wire_kind, body, patch=False)
        attempt = 0
        first_failure: float | None = None
        while True:
            attempt += 1
            headers = callback_headers(self._us, to)
            if not edge.routing_headers:
                headers = {k: v for k, v in headers.items() if not k.startswith("OCPI-")}
            answer: ModuleAnswer = await send_module_request(
                self._http,
                self.kind.method,
                url,
                token=token,
                headers=headers,
                json=body,
                raw_token=edge.raw_token,
            )
            fields = {
                "request_id": headers["X-Request-ID"],
                "attempt": attempt,
                "http_status": answer.http_status,
                "ocpi_status": answer.ocpi_status,
                "error": answer.error,
                **self.kind.fields(event),
            }
            outcome = classify(answer)
            if outcome is Outcome.DELIVERED:
                bound.info(self._log("delivered"), **fields)
                return "delivered"
            if outcome is Outcome.REJECTED:
                bound.warning(self._log("refused"), **fields)
                return "refused"
            now = time.monotonic()
            first_failure = first_failure or now
            if now - first_failure >= s.command_callback_give_up_s:
                bound.error(self._log("abandoned"), **fields)
                return "abandoned"
            delay = backoff_s(attempt, s.push_retry_initial_s, s.push_retry_max_s)
            bound.warning(self._log("retry"), delay_s=delay, **fields)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            if self._stop.is_set():
                bound.info(self._log("interrupted"), attempt=attempt)
                return "interrupted"
