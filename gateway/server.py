"""The OCPP 1.6J gateway process (``ocpi-hub gateway``, docs/adr/0018).

A WebSocket server at ``ws://{gateway_host}:{gateway_port}/ocpp/{cp_id}``
(subprotocol ``ocpp1.6``). Before the upgrade, the path must name a
registered charge point (else HTTP 404) and HTTP Basic credentials (OCPP 1.6
security profile 1: user = charge point id) must match its password hash
(else HTTP 401); nothing is written then. A connection records
ChargePointConnected / ChargePointDisconnected and keeps the Redis presence
key; a second connection of the same charge point replaces the first.

Commands: every gateway process reads ``ocpi.commands.v1`` in a consumer
group of its own and executes each CommandAccepted for a charge point
connected *to it* before the command's deadline (``gateway/commands.py``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import urlsplit

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from gateway.charge_point import ChargePointSession
from gateway.message_log import MessageLog
from gateway.state import GatewayState
from ocpi_hub.retrying import keep_running
from ocpi_hub.settings import Settings
from producers import charge_points
from producers import ocpp as rules
from producers.authorization import AuthorizationService
from producers.charge_points import CHARGE_POINT_ID_PATTERN, verify_password
from producers.log import EventLog
from producers.write_path import Origin, WritePath
from schemas.events import Party

log = structlog.get_logger(__name__)

_PATH = re.compile("/ocpp/" + CHARGE_POINT_ID_PATTERN.strip("^$"))
_VERIFIED_MAX = 100_000


class Registry(Protocol):
    async def get(self, charge_point_id: str) -> dict[str, Any] | None:
        """The charge point's registration (registered or not), or None."""
        ...


@dataclass(frozen=True)
class WritePathRegistry:
    """Registrations as the write path holds them (producers/charge_points.py):
    a charge point registered a moment ago can connect at once, whatever
    the registry view's lag."""

    write_path: WritePath

    async def get(self, charge_point_id: str) -> dict[str, Any] | None:
        state = await self.write_path.state(charge_points.SLICE, charge_point_id)
        return state.model_dump() if state is not None else None


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an HTTP Basic Authorization header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


@dataclass
class Gateway:
    settings: Settings
    event_log: EventLog
    state: GatewayState
    registry: Registry
    authorization: AuthorizationService
    # Each charger's recent messages for the dashboard (docs/adr/0038);
    # None keeps none.
    messages: MessageLog | None = None
    connections: dict[str, ChargePointSession] = field(default_factory=dict)
    # Successful verifications, keyed by an HMAC (with a per-process key) of
    # the charge point, password and hash: a reconnect skips PBKDF2, and a
    # changed password or registration misses the cache.
    _verified: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _cache_key: bytes = field(default_factory=lambda: os.urandom(32))
    # The registration each authenticated handshake found, for its handler.
    _pending: weakref.WeakKeyDictionary[ServerConnection, rules.Registration] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def us(self) -> Party:
        s = self.settings
        return Party(country_code=s.party_country_code, party_id=s.party_id)

    @property
    def presence_ttl_s(self) -> int:
        return 3 * self.settings.ocpp_heartbeat_interval_s

    def background(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- before the upgrade --------------------------------------------------------------

    async def _password_ok(self, reg: rules.Registration, password: str) -> bool:
        mac = hmac.new(
            self._cache_key,
            "\0".join((reg.charge_point_id, password, reg.password_hash)).encode(),
            hashlib.sha256,
        ).hexdigest()
        if mac in self._verified:
            return True
        if not await asyncio.to_thread(verify_password, password, reg.password_hash):
            return False
        self._verified[mac] = None
        if len(self._verified) > _VERIFIED_MAX:
            self._verified.popitem(last=False)
        return True

    async def check_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """404 for a path that is not a registered charge point, 401 for
        missing or wrong credentials, 503 when this gateway already holds
        ``gateway_max_connections`` (a charger it holds may still reconnect);
        None lets the upgrade go on."""
        match = _PATH.fullmatch(urlsplit(request.path).path)
        if match is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        cp_id = match.group(0).removeprefix("/ocpp/")
        if self._full() and cp_id not in self.connections:
            # Shed load before any work (the password check is the dearest
            # part of a connect); a charger retries on its own schedule.
            log.warning("ocpp_refused_full", charge_point=cp_id, held=len(self.connections))
            response = connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Gateway full\n")
            response.headers["Retry-After"] = str(self.settings.ocpp_heartbeat_interval_s)
            return response
        reg = rules.registration_of(await self.registry.get(cp_id))
        if reg is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        credentials = basic_credentials(request.headers.get("Authorization"))
        if credentials is None or credentials[0] != cp_id:
            return self._unauthorized(connection, cp_id, "missing")
        if not await self._password_ok(reg, credentials[1]):
            return self._unauthorized(connection, cp_id, "wrong")
        self._pending[connection] = reg
        return None

    def _full(self) -> bool:
        held = len(self.connections) + len(self._pending)
        return held >= self.settings.gateway_max_connections

    @staticmethod
    def _unauthorized(connection: ServerConnection, cp_id: str, why: str) -> Response:
        log.warning("ocpp_unauthorized", charge_point=cp_id, credentials=why)
        response = connection.respond(HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
        response.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
        return response

    # --- a connection ------------------------------------------------------------------------

    async def seen(self, cp_id: str) -> None:
        """The charger said something: its presence is refreshed."""
        try:
            await self.state.present(
                cp_id, self.settings.gateway_id, self.presence_ttl_s, time.time()
            )
        except Exception:
            log.warning("ocpp_presence_failed", charge_point=cp_id, exc_info=True)

    async def handle(self, connection: ServerConnection) -> None:
        reg = self._pending.pop(connection, None)
        if reg is None:  # pragma: no cover - check_request always runs first
            await connection.close(1011, "not authenticated")
            return
        cp_id = reg.charge_point_id
        session = ChargePointSession(reg, connection, self)
        origin = Origin(self.us, f"ocpp:{cp_id}")
        try:
            await self.event_log.append(
                [rules.connected(cp_id, self.settings.gateway_id, origin, datetime.now(UTC))]
            )
        except Exception:
            log.exception("ocpp_connect_not_recorded", charge_point=cp_id)
            await connection.close(1011, "try again later")
            return
        old = self.connections.get(cp_id)
        self.connections[cp_id] = session
        if old is not None:
            log.info("ocpp_connection_replaced", charge_point=cp_id)
            self.background(old.connection.close(1000, "replaced by a new connection"))
        await self.seen(cp_id)
        log.info("ocpp_connected", charge_point=cp_id)
        reason: str | None = None
        try:
            await session.start()
        except ConnectionClosed as closed:
            reason = closed.rcvd.reason if closed.rcvd else None
        except Exception:
            log.exception("ocpp_connection_failed", charge_point=cp_id)
            reason = "gateway error"
        finally:
            if self.connections.get(cp_id) is session:
                del self.connections[cp_id]
                try:
                    await self.state.absent(cp_id, self.settings.gateway_id)
                except Exception:
                    log.warning("ocpp_presence_failed", charge_point=cp_id, exc_info=True)
            try:
                await self.event_log.append(
                    [
                        rules.disconnected(
                            cp_id, self.settings.gateway_id, reason, origin, datetime.now(UTC)
                        )
                    ]
                )
            except Exception:
                log.warning("ocpp_disconnect_not_recorded", charge_point=cp_id, exc_info=True)
            log.info("ocpp_disconnected", charge_point=cp_id)

    def server(self) -> Any:
        """The websockets server (an async context manager)."""
        return serve(
            self.handle,
            self.settings.gateway_host,
            self.settings.gateway_port,
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            process_request=self.check_request,
            ping_interval=None,  # OCPP has its own Heartbeat
            max_size=1 << 20,
        )


async def run(
    gateway: Gateway, stop: asyncio.Event, consume: Callable[[], Awaitable[None]]
) -> None:
    """Serve until ``stop`` is set, consuming commands alongside."""
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    server: Server
    async with gateway.server() as server:
        log.info(
            "gateway_started",
            gateway_id=gateway.settings.gateway_id,
            port=gateway.settings.gateway_port,
        )
        # A command consumer that fails (Kafka away) starts again with
        # backoff, logged; the chargers' connections stay. Its commands wait
        # in the topic meanwhile (committed offsets), as over a restart.
        consumer = asyncio.ensure_future(
            keep_running(
                consume,
                stop,
                name="gateway_command_consumer",
                initial_s=gateway.settings.restart_initial_s,
                max_s=gateway.settings.restart_max_s,
            )
        )
        stopping = asyncio.ensure_future(stop.wait())
        writer = asyncio.ensure_future(gateway.messages.run()) if gateway.messages else None
        try:
            await asyncio.wait({consumer, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if consumer.done():
                consumer.result()  # ends only on stop, or raises what it could not handle
        finally:
            consumer.cancel()
            stopping.cancel()
            if writer is not None:
                writer.cancel()
            server.close()
