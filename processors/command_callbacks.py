"""POST the result of each received command (we as CPO decided it) to the
eMSP's ``response_url`` (mod_commands: the CPO sends CommandResult to the
URL of the request). Results of the commands we sent are received, not
sent, here: api/ocpi/sent_commands.py.

A consumer of ``ocpi.commands.v1`` in its own group
(``{prefix}ocpi-hub-command-callbacks``) in the ``ocpi-hub push`` process.
For every ``CommandResultDecided`` it POSTs ``CommandResult{result,
message?}`` with only our token for that partner and fresh request and
correlation ids: nothing of the eMSP's original request is sent back.

- Transport errors, HTTP 5xx (and 401/408/429) are retried with the push
  backoff until ``command_callback_give_up_s`` has passed since the first
  failure; then ``command_callback_abandoned`` is logged.
- An OCPI error answer (HTTP 4xx, or a status_code outside 1xxx) is final
  and logged.
- At most once per command: a Redis marker per command id is set once the
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
from producers.received_commands import given_by_operator
from producers.url_policy import UrlRefusedError, check_url, partner_http
from schemas.events import CommandResultDecided, Party, parse_event
from schemas.ocpi.commands import CommandResult
from schemas.ocpi.common import fold
from schemas.ocpi.credentials import Role
from schemas.ocpi.types import to_json
from schemas.topics import COMMANDS

log = structlog.get_logger(__name__)

_MAX_POLL_INTERVAL_MS = 24 * 3600 * 1000
_BATCH = 100
# Delivered markers are kept long enough to outlive any re-read of the log
# by this consumer group.
_MARKER_TTL_S = 90 * 24 * 3600


def callback_body(event: CommandResultDecided) -> dict[str, Any]:
    p = event.payload
    return to_json(CommandResult(result=p.result, message=p.message))


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
    async def delivered(self, command_id: str) -> bool: ...

    async def mark(self, command_id: str, outcome: str) -> None: ...


@dataclass
class RedisDeliveredMarks:
    redis: Any  # redis.asyncio.Redis
    prefix: str = ""

    def _key(self, command_id: str) -> str:
        return f"{self.prefix}ocpi-hub:commands:callback:{command_id}"

    async def delivered(self, command_id: str) -> bool:
        return bool(await self.redis.exists(self._key(command_id)))

    async def mark(self, command_id: str, outcome: str) -> None:
        await self.redis.set(self._key(command_id), outcome, ex=_MARKER_TTL_S)


class CommandCallbackSender:
    """Reads the decisions and POSTs them, one partition at a time in order,
    partitions side by side."""

    def __init__(
        self,
        settings: Settings,
        partners: PartnerLookup,
        vault: TokenUnsealer,
        marks: DeliveredMarks,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        """``http``: a client for ``deliver`` outside ``run`` (tests); ``run``
        makes its own."""
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
        return self._settings.topic("ocpi-hub-command-callbacks")

    async def supervise(self, stop: asyncio.Event) -> None:
        """``run`` until ``stop``, started again after a failure (Kafka
        unreachable, ...) so the push process's other lanes are not taken down."""
        while not stop.is_set():
            try:
                await self.run(stop)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("command_callbacks_failed", error=type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2.0)

    async def run(self, stop: asyncio.Event) -> None:
        s = self._settings
        self._stop = stop
        consumer = AIOKafkaConsumer(
            s.topic(COMMANDS.name),
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
        log.info("command_callbacks_started", group=self.group_id)
        try:
            # response_url: each connection checked and pinned (url_policy).
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
                        log.warning("command_callbacks_commit_failed", error=type(exc).__name__)
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

    def _decode(self, message: ConsumerRecord[bytes, bytes]) -> CommandResultDecided | None:
        event_type = dict(message.headers or ()).get("event_type", b"").decode()
        if event_type and event_type != "CommandResultDecided":
            return None
        try:
            event = parse_event(message.value or b"")
        except ValueError:
            log.warning(
                "command_callback_undecodable", partition=message.partition, offset=message.offset
            )
            return None
        return event if isinstance(event, CommandResultDecided) else None

    async def deliver(self, event: CommandResultDecided) -> str:
        """Send one result (unless it was already); return the outcome."""
        p = event.payload
        bound = log.bind(
            command_id=p.command_id, partner_id=p.partner_id, event_id=str(event.event_id)
        )
        if given_by_operator(p.partner_id):
            # Our operator's own command: no eMSP to tell; its result is read
            # from the ops API and the dashboard.
            return "operator"
        if await self._marks.delivered(p.command_id):
            bound.info("command_callback_already_sent")
            return "already"
        partner = await self._partners.get(p.partner_id)
        token = None
        if partner is not None and partner.status == "registered" and partner.our_token_encrypted:
            try:
                token = self._vault.decrypt(partner.our_token_encrypted)
            except Exception as exc:
                bound.error("command_callback_token_unreadable", error=type(exc).__name__)
        if partner is None or token is None:
            bound.error("command_callback_no_partner")
            await self._marks.mark(p.command_id, "no_partner")
            return "no_partner"
        outcome = await self._send(event, token, emsp_party(partner), bound)
        if outcome == "interrupted":
            return outcome
        await self._marks.mark(p.command_id, outcome)
        return outcome

    async def _send(
        self, event: CommandResultDecided, token: str, to: Party | None, bound: Any
    ) -> str:
        assert self._http is not None
        s = self._settings
        try:
            # Checked when the command came in; again here, as the host's
            # addresses may have changed since (docs/adr/0039).
            await check_url(
                event.payload.response_url,
                allow_private=s.url_policy_allow_private,
                what="response_url",
            )
        except UrlRefusedError as exc:
            bound.error("command_callback_url_refused", reason=str(exc))
            return "refused"
        attempt = 0
        first_failure: float | None = None
        while True:
            attempt += 1
            headers = callback_headers(self._us, to)
            answer: ModuleAnswer = await send_module_request(
                self._http,
                "POST",
                event.payload.response_url,
                token=token,
                headers=headers,
                json=callback_body(event),
            )
            fields = {
                "request_id": headers["X-Request-ID"],
                "attempt": attempt,
                "http_status": answer.http_status,
                "ocpi_status": answer.ocpi_status,
                "error": answer.error,
                "result": event.payload.result.value,
            }
            outcome = classify(answer)
            if outcome is Outcome.DELIVERED:
                bound.info("command_callback_delivered", **fields)
                return "delivered"
            if outcome is Outcome.REJECTED:
                bound.warning("command_callback_refused", **fields)
                return "refused"
            now = time.monotonic()
            first_failure = first_failure or now
            if now - first_failure >= s.command_callback_give_up_s:
                bound.error("command_callback_abandoned", **fields)
                return "abandoned"
            delay = backoff_s(attempt, s.push_retry_initial_s, s.push_retry_max_s)
            bound.warning("command_callback_retry", delay_s=delay, **fields)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            if self._stop.is_set():
                bound.info("command_callback_interrupted", attempt=attempt)
                return "interrupted"
