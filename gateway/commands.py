"""Received commands at the charger (docs/adr/0018): the commands partner
eMSPs sent us as CPO, carried out over OCPP.

Every gateway process consumes ``ocpi.commands.v1`` in a consumer group of
its own (``{prefix}ocpi-hub-gateway-{gateway_id}``, committed offsets), so
each sees every command; it acts only on a ``CommandAccepted`` whose charge
point is connected to *this* process and whose deadline has not passed. A
command for a charger connected nowhere is left to the deadline (TIMEOUT,
decided by the command-results processor).

The call waits at most until the deadline. An answer is recorded as
``ChargerCommandAnswered`` (acks=all); no answer records nothing. A
ReserveNow the charger accepted is also the charger fact ``ReservationMade``
(the session in RESERVATION); a CancelReservation it accepted,
``ReservationEnded(CANCELLED)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from ocpp.exceptions import OCPPError
from ocpp.v16 import call

from gateway.charge_point import ChargePointSession, ocpp_time
from gateway.server import Gateway
from producers import ocpp as rules
from producers.write_path import Origin
from schemas.events import (
    ChargerCommandAnswered,
    CommandAccepted,
    EventMeta,
    ReservationEnded,
    ReservationMade,
    new_event_id,
    parse_event,
)
from schemas.events.commands import ChargerCommandAnsweredPayload
from schemas.ocpi.commands import CommandResultType, CommandType, ReserveNow, StartSession
from schemas.ocpi.sessions import NOT_AVAILABLE
from schemas.topics import COMMANDS, TopicSpec

log = structlog.get_logger(__name__)


def answered(
    accepted: CommandAccepted,
    result: CommandResultType,
    charger_status: str | None,
    message: str | None,
    now: datetime,
) -> ChargerCommandAnswered:
    p = accepted.payload
    return ChargerCommandAnswered(
        event_id=new_event_id(),
        aggregate_key=accepted.aggregate_key,
        occurred_at=now,
        recorded_at=now,
        source=accepted.source,
        correlation_id=accepted.correlation_id,
        causation_id=accepted.event_id,
        payload=ChargerCommandAnsweredPayload(
            command_id=p.command_id,
            charge_point_id=p.target.charge_point_id,
            result=result,
            charger_status=charger_status[:40] if charger_status else None,
            message=message[:512] if message else None,
            at=now,
        ),
    )


async def follow_accepted(
    gw: Gateway,
    topic: TopicSpec,
    group_suffix: str,
    accepted: type[EventMeta],
    execute: Callable[[ChargePointSession, Any], Awaitable[None]],
) -> None:
    """Read ``topic`` in this gateway's own consumer group (every gateway
    sees every request) and start ``execute`` for each ``accepted`` event
    (its payload has a ``target`` and a ``deadline``) whose charger is
    connected to this gateway, while its deadline has not passed. Offsets
    are committed after a batch was handed over: a restart re-reads
    nothing already started, and a new gateway reads from the start
    (passed deadlines are skipped)."""
    s = gw.settings
    group = f"ocpi-hub-gateway-{s.gateway_id}{group_suffix}"
    consumer = AIOKafkaConsumer(
        s.topic(topic.name),
        bootstrap_servers=s.kafka_bootstrap,
        group_id=f"{s.topic_prefix}{group}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
    )
    wanted = accepted.__name__
    await consumer.start()
    log.info("gateway_requests_started", group=group, topic=topic.name)
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for messages in batches.values():
                for message in messages:
                    headers = dict(message.headers or ())
                    if headers.get("event_type", b"").decode() != wanted:
                        continue
                    try:
                        event = parse_event(message.value or b"")
                    except ValueError:
                        log.warning("gateway_request_undecodable", offset=message.offset)
                        continue
                    if isinstance(event, accepted):
                        _dispatch(gw, event, execute)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()


def _dispatch(
    gw: Gateway, event: Any, execute: Callable[[ChargePointSession, Any], Awaitable[None]]
) -> None:
    """Start the request if its charger is connected here and time remains."""
    p = event.payload
    session = gw.connections.get(p.target.charge_point_id)
    if session is None or p.deadline <= datetime.now(UTC):
        return
    gw.background(execute(session, event))


class CommandRunner:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    async def consume(self) -> None:
        await follow_accepted(self.gw, COMMANDS, "", CommandAccepted, self.execute)

    async def execute(self, session: ChargePointSession, accepted: CommandAccepted) -> None:
        p = accepted.payload
        bound = log.bind(command_id=p.command_id, command=p.command.value, charge_point=session.id)
        try:
            facts, outcome = await self._run(session, accepted)
        except TimeoutError:
            bound.info("command_unanswered")
            return
        except Exception:
            bound.exception("command_failed")
            return
        if outcome is None:
            return
        result, status, message = outcome
        now = datetime.now(UTC)
        try:
            await self.gw.event_log.append(
                [*facts, answered(accepted, result, status, message, now)]
            )
        except Exception:
            bound.exception("command_answer_not_recorded")
            return
        bound.info("command_answered", result=result.value, charger_status=status)

    async def _run(
        self, session: ChargePointSession, accepted: CommandAccepted
    ) -> tuple[list[EventMeta], tuple[CommandResultType, str | None, str | None] | None]:
        p = accepted.payload
        t = p.target
        state = self.gw.state
        cp_id = session.id
        left = (p.deadline - datetime.now(UTC)).total_seconds()
        if left <= 0:
            return [], None
        payload: Any
        if p.command is CommandType.START_SESSION:
            start = StartSession.model_validate(p.request)
            identity = rules.token_identity(start.token.model_dump(mode="json"))
            assert identity is not None
            # Remembered before the call: the charger may start at once.
            await state.remember_command_token(
                cp_id,
                start.token.uid,
                {
                    "token": identity.model_dump(mode="json"),
                    "authorization_reference": start.authorization_reference,
                    "command_id": p.command_id,
                },
            )
            connector = t.ocpp_connector_id if t.ocpp_connector_id else None
            payload = call.RemoteStartTransaction(id_tag=start.token.uid, connector_id=connector)
        elif p.command is CommandType.STOP_SESSION:
            known = await state.transaction_of_session(t.session_id or "")
            if known is None or known["cp"] != cp_id:
                message = "no transaction of this session at the charger"
                return [], (CommandResultType.REJECTED, None, message)
            payload = call.RemoteStopTransaction(transaction_id=int(known["txid"]))
        elif p.command is CommandType.RESERVE_NOW:
            reserve = ReserveNow.model_validate(p.request)
            payload = call.ReserveNow(
                connector_id=t.ocpp_connector_id or 0,
                expiry_date=ocpp_time(reserve.expiry_date),
                id_tag=reserve.token.uid,
                reservation_id=t.ocpp_reservation_id or 0,
            )
        elif p.command is CommandType.CANCEL_RESERVATION:
            payload = call.CancelReservation(reservation_id=t.ocpp_reservation_id or 0)
        else:
            payload = call.UnlockConnector(connector_id=t.ocpp_connector_id or 0)
        try:
            answer = await session.send(payload, left)
        except OCPPError as error:
            result = rules.command_result(p.command, None, error.code)
            return [], (result, error.code, error.description)
        status = str(getattr(answer, "status", "") or "") or None
        result = rules.command_result(p.command, status)
        facts: list[EventMeta] = []
        if result is CommandResultType.ACCEPTED:
            facts = await self._reservation_facts(session, accepted)
        return facts, (result, status, None)

    async def _reservation_facts(
        self, session: ChargePointSession, accepted: CommandAccepted
    ) -> list[EventMeta]:
        p = accepted.payload
        t = p.target
        reg = session.registration
        state = self.gw.state
        now = datetime.now(UTC)
        origin = Origin(self.gw.us, accepted.correlation_id)
        if p.command is CommandType.RESERVE_NOW and t.ocpp_reservation_id is not None:
            reserve = ReserveNow.model_validate(p.request)
            identity = rules.token_identity(reserve.token.model_dump(mode="json"))
            assert identity is not None
            evse_uid = t.evse_uid or NOT_AVAILABLE
            connector_id = t.connector_id
            if connector_id is None and t.evse_uid is not None:
                mapped = reg.by_evse(t.evse_uid)
                connector_id = mapped.connector_id if mapped else None
            # A reservation id the charger still holds is replaced (mod_commands
            # ReserveNow): its session goes on, with the new expiry (ADR 0021).
            held = await state.reservation(session.id, t.ocpp_reservation_id)
            reused = held["session_id"] if held and rules.reservation_usable(held, now) else None
            entry = {
                "country_code": reg.country_code,
                "party_id": reg.party_id,
                "location_id": reg.location_id,
                "evse_uid": evse_uid,
                "connector_id": connector_id or NOT_AVAILABLE,
                "session_id": reused or rules.session_id(),
                "reservation_id": reserve.reservation_id,
            }
            token = identity.model_dump(mode="json")
            reference = reserve.authorization_reference
            ttl = int((reserve.expiry_date - now).total_seconds()) + 300
            await state.remember_reservation(
                session.id,
                t.ocpp_reservation_id,
                {
                    **entry,
                    "token": token,
                    "authorization_reference": reference,
                    "expires_at": reserve.expiry_date.isoformat(),
                },
                ttl,
            )
            await state.remember_command_token(
                session.id,
                reserve.token.uid,
                {"token": token, "authorization_reference": reference},
            )
            made = rules.fact(
                ReservationMade,
                {
                    **entry,
                    "token": token,
                    "authorization_reference": reference,
                    "expires_at": reserve.expiry_date,
                    "at": now,
                },
                origin,
                now,
            )
            return [made]
        if p.command is CommandType.CANCEL_RESERVATION and t.ocpp_reservation_id is not None:
            held = await state.reservation(session.id, t.ocpp_reservation_id)
            if held is None:
                return []
            await state.forget_reservation(session.id, t.ocpp_reservation_id)
            keep = (
                "country_code",
                "party_id",
                "location_id",
                "evse_uid",
                "connector_id",
                "session_id",
                "reservation_id",
            )
            ended = rules.fact(
                ReservationEnded,
                {**{k: held[k] for k in keep}, "reason": "CANCELLED", "at": now},
                origin,
                now,
            )
            return [ended]
        return []
