"""One charger's OCPP 1.6J session: the ``ocpp`` library's ChargePoint (the
Central System side) with our handlers. Each handler records its events with
the event log (acks=all) *before* it answers, so a charger is only told
"done" for what is durably recorded; a failure to record answers a CallError
(InternalError) and the charger retries (OCPP 1.6, 4.x: transaction
messages are queued and resent).

Malformed frames get a CallError (FormatViolation, ProtocolError...) here,
since the library only logs them; a handler that fails answers
InternalError. Nothing a charger sends ends anything but its own connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar

import structlog
from ocpp.exceptions import FormatViolationError, OCPPError
from ocpp.messages import CallError, unpack
from ocpp.routing import on as _on
from ocpp.v16 import ChargePoint as OcppChargePoint
from ocpp.v16 import call_result
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus

from gateway.message_log import CallTracker, MessageLog
from gateway.state import GatewayState
from ocpi_hub.settings import Settings
from producers import ocpp as rules
from producers.authorization import AuthorizationService, AuthorizeRequest
from producers.log import EventLog
from producers.write_path import Origin, RefusedError
from schemas.events import (
    EventMeta,
    MeterValuesSampled,
    Party,
    TransactionStarted,
    TransactionStopped,
)
from schemas.ocpi.sessions import AuthMethod
from schemas.ocpi.tokens import LocationReferences
from schemas.ocpi.types import TokenType


class GatewayServices(Protocol):
    """What a charger's session uses of the gateway that accepted it
    (gateway/server.py's Gateway); named here so that module imports this
    one and not the other way round."""

    settings: Settings
    event_log: EventLog
    state: GatewayState
    authorization: AuthorizationService
    messages: MessageLog | None

    @property
    def us(self) -> Party: ...

    async def seen(self, cp_id: str) -> None: ...


log = structlog.get_logger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def on(action: Action) -> Callable[[F], F]:
    """The library's route decorator, typed."""
    decorator: Callable[[F], F] = _on(action)
    return decorator


def parse_time(value: Any) -> datetime:
    """An OCPP dateTime (RFC 3339); a zone-less one is taken as UTC."""
    at = datetime.fromisoformat(str(value))
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _at(value: Any) -> datetime:
    """A timestamp of a message; one we cannot read is the charger's error."""
    try:
        return parse_time(value)
    except (TypeError, ValueError) as exc:
        raise FormatViolationError(details={"cause": "timestamp is not a date-time"}) from exc


def ocpp_time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _malformed_answer(raw: Any, error: OCPPError) -> str:
    """A CallError for a frame the library could not unpack, under the
    frame's unique id when one can be read (else "-1")."""
    unique_id = "-1"
    try:
        frame = json.loads(raw)
        if isinstance(frame, list) and len(frame) > 1 and isinstance(frame[1], str):
            unique_id = frame[1][:36]
    except (ValueError, TypeError):
        pass
    cause = str((error.details or {}).get("cause", ""))[:200]
    answer: str = CallError(unique_id, error.code, error.description, {"cause": cause}).to_json()
    return answer


class ChargePointSession(OcppChargePoint):  # type: ignore[misc]
    def __init__(self, registration: rules.Registration, connection: Any, gateway: GatewayServices):
        super().__init__(
            registration.charge_point_id,
            connection,
            response_timeout=gateway.settings.command_timeout_s,
        )
        self.registration = registration
        self.gw = gateway
        self.connection = connection
        self._calls = CallTracker()

    # --- the frame loop -----------------------------------------------------------

    async def start(self) -> None:
        while True:
            raw = await self._connection.recv()
            self._log(raw, "in")
            await self.gw.seen(self.id)
            try:
                unpack(raw)
            except OCPPError as error:
                log.warning("ocpp_malformed_frame", charge_point=self.id, code=error.code)
                await self._send(_malformed_answer(raw, error))
                continue
            try:
                await self.route_message(raw)
            except Exception:
                # A failure outside the library's own handling (e.g. our
                # answer failed its schema): this message only.
                log.exception("ocpp_message_failed", charge_point=self.id)

    async def _send(self, message: str) -> None:
        # Every frame we send (answers, CallErrors, our calls) passes here.
        self._log(message, "out")
        await super()._send(message)

    def _log(self, raw: str | bytes, direction: Literal["in", "out"]) -> None:
        messages = self.gw.messages
        if messages is not None:
            messages.frame(self.id, raw, direction, self._calls)

    # --- helpers ------------------------------------------------------------------------

    def _origin(self) -> Origin:
        return Origin(self.gw.us, f"ocpp:{self.id}")

    async def _record(self, events: Sequence[EventMeta]) -> None:
        if events:
            await self.gw.event_log.append(list(events))

    def _now(self) -> datetime:
        return datetime.now(UTC)

    # --- Core profile: charger -> central system --------------------------------------

    @on(Action.boot_notification)
    async def on_boot_notification(
        self, charge_point_vendor: str, charge_point_model: str, **extra: Any
    ) -> Any:
        now = self._now()
        await self._record(
            [
                rules.booted(
                    self.id,
                    vendor=charge_point_vendor,
                    model=charge_point_model,
                    serial_number=extra.get("charge_point_serial_number"),
                    firmware_version=extra.get("firmware_version"),
                    origin=self._origin(),
                    now=now,
                )
            ]
        )
        return call_result.BootNotification(
            current_time=ocpp_time(now),
            interval=self.gw.settings.ocpp_heartbeat_interval_s,
            status=RegistrationStatus.accepted,
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self) -> Any:
        now = self._now()
        await self._record([rules.heartbeat(self.id, self._origin(), now)])
        return call_result.Heartbeat(current_time=ocpp_time(now))

    @on(Action.status_notification)
    async def on_status_notification(
        self,
        connector_id: int,
        error_code: str,
        status: str,
        timestamp: str | None = None,
        info: str | None = None,
        **_: Any,
    ) -> Any:
        now = self._now()
        events = rules.connector_statuses(
            self.registration,
            ocpp_connector_id=connector_id,
            status=status,
            error_code=error_code,
            info=info,
            at=_at(timestamp) if timestamp else now,
            origin=self._origin(),
            now=now,
        )
        if not events:
            log.warning("ocpp_unknown_connector", charge_point=self.id, connector=connector_id)
        await self._record(events)
        return call_result.StatusNotification()

    async def _decide(self, id_tag: str) -> Any:
        """Our authorization decision for an idTag at this charge point."""
        reg = self.registration
        request = AuthorizeRequest(
            uid=id_tag,
            type=TokenType.RFID,
            location=LocationReferences(location_id=reg.location_id, evse_uids=reg.evse_uids),
        )
        try:
            return await self.gw.authorization.authorize(
                request, f"ocpp:{self.id}", now=self._now()
            )
        except RefusedError:
            return None

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str) -> Any:
        if await self.gw.state.command_token(self.id, id_tag) is not None:
            status = AuthorizationStatus.accepted.value
        else:
            decision = await self._decide(id_tag)
            status = rules.id_tag_status(decision) if decision else "Invalid"
        return call_result.Authorize(id_tag_info={"status": status})

    @on(Action.start_transaction)
    async def on_start_transaction(
        self,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        timestamp: str,
        reservation_id: int | None = None,
        **_: Any,
    ) -> Any:
        state = self.gw.state
        txid = await state.new_transaction_id()
        at = _at(timestamp)
        connector = self.registration.connector(connector_id)
        if connector is None:
            log.warning("ocpp_unknown_connector", charge_point=self.id, connector=connector_id)
            await state.remember_transaction(self.id, txid, {"recorded": False})
            return call_result.StartTransaction(
                transaction_id=txid, id_tag_info={"status": "Invalid"}
            )
        reservation = (
            await state.reservation(self.id, reservation_id) if reservation_id is not None else None
        )
        if reservation is not None and not rules.reservation_usable(reservation, self._now()):
            # Past its expiry its session ends (docs/adr/0021): a charge of its own.
            log.info("ocpp_start_expired_reservation", charge_point=self.id)
            reservation = None
        remote = await state.command_token(self.id, id_tag)
        session_id = rules.session_id()
        if reservation is not None:
            # ADR 0015: the reservation's session goes on with this transaction.
            session_id = reservation["session_id"]
            token, reference = reservation["token"], reservation.get("authorization_reference")
            authorized, method, status = True, AuthMethod.COMMAND, "Accepted"
        elif remote is not None:
            token, reference = remote["token"], remote.get("authorization_reference")
            authorized, method, status = True, AuthMethod.COMMAND, "Accepted"
        else:
            decision = await self._decide(id_tag)
            identity = rules.token_identity(decision.token) if decision else None
            if decision is None or identity is None:
                # Nobody knows the token: OCPP 1.6 (StopTransactionOnInvalidId)
                # has the charger stop; nobody could be billed, so nothing is
                # recorded (docs/adr/0018); its stop is answered and ignored.
                log.info("ocpp_start_unknown_token", charge_point=self.id, transaction=txid)
                await state.remember_transaction(self.id, txid, {"recorded": False})
                return call_result.StartTransaction(
                    transaction_id=txid, id_tag_info={"status": "Invalid"}
                )
            token = identity.model_dump(mode="json")
            reference = decision.authorization_reference
            authorized, method = decision.authorized, rules.auth_method(decision)
            status = rules.id_tag_status(decision)
        where = {
            "country_code": self.registration.country_code,
            "party_id": self.registration.party_id,
            "location_id": self.registration.location_id,
            "evse_uid": connector.evse_uid,
            "connector_id": connector.connector_id,
            "session_id": session_id,
            "transaction_id": str(txid),
        }
        event = rules.fact(
            TransactionStarted,
            {
                **where,
                "token": token,
                "authorized": authorized,
                "auth_method": method,
                "authorization_reference": reference,
                "meter_start_wh": meter_start,
                "at": at,
            },
            self._origin(),
            self._now(),
        )
        await self._record([event])
        await state.remember_transaction(self.id, txid, {**where, "recorded": True})
        if reservation is not None and reservation_id is not None:
            await state.forget_reservation(self.id, reservation_id)
        if remote is not None:
            await state.forget_command_token(self.id, id_tag)
        return call_result.StartTransaction(transaction_id=txid, id_tag_info={"status": status})

    def _samples(self, where: dict[str, Any], meter_values: Sequence[Any]) -> list[EventMeta]:
        now = self._now()
        return [
            rules.fact(
                MeterValuesSampled,
                {
                    **where,
                    "meter_wh": r.meter_wh,
                    "current_a": r.current_a,
                    "power_kw": r.power_kw,
                    "at": r.at,
                },
                self._origin(),
                now,
            )
            for r in rules.readings(meter_values, parse_time)
            if r.meter_wh is not None
        ]

    @staticmethod
    def _where(transaction: dict[str, Any] | None) -> dict[str, Any] | None:
        if not transaction or not transaction.get("recorded"):
            return None
        return {k: v for k, v in transaction.items() if k != "recorded"}

    @on(Action.meter_values)
    async def on_meter_values(
        self, connector_id: int, meter_value: list[Any], transaction_id: int | None = None
    ) -> Any:
        if transaction_id is not None:
            where = self._where(await self.gw.state.transaction(self.id, transaction_id))
            if where is not None:
                await self._record(self._samples(where, meter_value))
        # Samples outside a recorded transaction say nothing we keep.
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    async def on_stop_transaction(
        self,
        meter_stop: int,
        timestamp: str,
        transaction_id: int,
        reason: str | None = None,
        id_tag: str | None = None,
        transaction_data: list[Any] | None = None,
        **_: Any,
    ) -> Any:
        where = self._where(await self.gw.state.transaction(self.id, transaction_id))
        if where is None:
            log.info("ocpp_stop_unrecorded", charge_point=self.id, transaction=transaction_id)
        else:
            events = self._samples(where, transaction_data or [])
            events.append(
                rules.fact(
                    TransactionStopped,
                    {
                        **where,
                        "meter_stop_wh": meter_stop,
                        "reason": reason or "Local",
                        "at": _at(timestamp),
                    },
                    self._origin(),
                    self._now(),
                )
            )
            await self._record(events)
        if id_tag is None:
            return call_result.StopTransaction()
        return call_result.StopTransaction(id_tag_info={"status": "Accepted"})

    # --- central system -> charger ---------------------------------------------------

    async def send(self, payload: Any, timeout_s: float) -> Any:
        """One call to the charger, raising TimeoutError after ``timeout_s``
        and the CallError (as OCPPError) when it answers with one."""
        return await asyncio.wait_for(self.call(payload, suppress=False), timeout=timeout_s)
