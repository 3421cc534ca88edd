"""Charging profiles at the charger (docs/adr/0043): the requests partner
Senders made of our sessions as CPO, carried out over OCPP 1.6.

Every gateway reads ``ocpi.charging-profiles.v1`` in a group of its own and
acts on a ``ChargingProfileRequestAccepted`` whose charge point is connected
to it, before the deadline (as for commands, gateway/commands.py):

- SET: SetChargingProfile with a TxProfile on the session's transaction
  (``producers.charging_profiles.to_ocpp_tx_profile``);
- GET: GetCompositeSchedule of the session's connector for the duration
  asked, its schedule made an OCPI ActiveChargingProfile;
- CLEAR: ClearChargingProfile of the profile we set on the transaction.

The answer is recorded as ``ChargerProfileAnswered``; no answer records
nothing (the deadline decides). When the charger accepted a SET, its
schedule changed: the gateway asks for the composite schedule
(``charging_profile_active_duration_s``) and records
``ActiveChargingProfileChanged``, which is PUT to the Sender.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from ocpp.exceptions import OCPPError
from ocpp.v16 import call

from gateway.charge_point import ChargePointSession
from gateway.commands import follow_accepted
from gateway.server import Gateway
from producers.charging_profiles import (
    active_profile_of,
    ocpp_profile_id,
    result_of,
    to_ocpp_tx_profile,
)
from schemas.events import (
    ActiveChargingProfileChanged,
    ChargerProfileAnswered,
    ChargingProfileRequestAccepted,
    EventMeta,
)
from schemas.events.charging_profiles import (
    ActiveChargingProfileChangedPayload,
    ChargerProfileAnsweredPayload,
)
from schemas.events.envelope import envelope_of
from schemas.events.sessions import session_key
from schemas.ocpi.charging_profiles import ChargingProfileResultType, ProfileAction
from schemas.topics import CHARGING_PROFILES

log = structlog.get_logger(__name__)

NO_TRANSACTION = "NoTransaction"

Outcome = tuple[ChargingProfileResultType, str | None, dict[str, Any] | None]


def _meta(
    accepted: ChargingProfileRequestAccepted, now: datetime, key: str | None = None
) -> dict[str, Any]:
    return envelope_of(
        key or accepted.aggregate_key,
        now,
        accepted.source,
        accepted.correlation_id,
        causation_id=accepted.event_id,
    )


def answered(
    accepted: ChargingProfileRequestAccepted, outcome: Outcome, now: datetime
) -> ChargerProfileAnswered:
    result, status, profile = outcome
    p = accepted.payload
    return ChargerProfileAnswered(
        **_meta(accepted, now),
        payload=ChargerProfileAnsweredPayload(
            request_id=p.request_id,
            charge_point_id=p.target.charge_point_id,
            result=result,
            charger_status=status[:40] if status else None,
            active_profile=profile,
            at=now,
        ),
    )


class ProfileRunner:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    async def consume(self) -> None:
        await follow_accepted(
            self.gw,
            CHARGING_PROFILES,
            "-charging-profiles",
            ChargingProfileRequestAccepted,
            self.execute,
        )

    async def execute(
        self, session: ChargePointSession, accepted: ChargingProfileRequestAccepted
    ) -> None:
        p = accepted.payload
        bound = log.bind(request_id=p.request_id, action=p.action.value, charge_point=session.id)
        left = (p.deadline - datetime.now(UTC)).total_seconds()
        if left <= 0:
            return
        try:
            outcome = await self._run(session, accepted, left)
        except TimeoutError:
            bound.info("charging_profile_unanswered")
            return
        except Exception:
            bound.exception("charging_profile_failed")
            return
        events: list[EventMeta] = [answered(accepted, outcome, datetime.now(UTC))]
        try:
            await self.gw.event_log.append(events)
        except Exception:
            bound.exception("charging_profile_answer_not_recorded")
            return
        bound.info("charging_profile_answered", result=outcome[0].value, charger_status=outcome[1])
        if p.action is ProfileAction.SET and outcome[0] is ChargingProfileResultType.ACCEPTED:
            await self._schedule_changed(session, accepted, bound)

    async def _run(
        self, session: ChargePointSession, accepted: ChargingProfileRequestAccepted, left: float
    ) -> Outcome:
        p = accepted.payload
        connector = p.target.ocpp_connector_id or 0
        known = await self.gw.state.transaction_of_session(p.session_id)
        txid = int(known["txid"]) if known and known.get("cp") == session.id else None
        payload: Any
        if p.action is ProfileAction.GET:
            payload = call.GetCompositeSchedule(connector_id=connector, duration=p.duration or 0)
        elif txid is None:
            # A TxProfile names the transaction; without one there is
            # nothing to set or clear on this charger.
            return ChargingProfileResultType.REJECTED, NO_TRANSACTION, None
        elif p.action is ProfileAction.SET:
            payload = call.SetChargingProfile(
                connector_id=connector,
                cs_charging_profiles=to_ocpp_tx_profile(
                    p.charging_profile or {},
                    txid,
                    self.gw.settings.charging_profile_stack_level,
                ),
            )
        else:
            payload = call.ClearChargingProfile(id=ocpp_profile_id(txid))
        try:
            answer = await session.send(payload, left)
        except OCPPError as error:
            return result_of(None), error.code, None
        status = str(getattr(answer, "status", "") or "") or None
        profile = None
        if p.action is ProfileAction.GET and status == "Accepted":
            profile = active_profile_of(
                getattr(answer, "schedule_start", None),
                getattr(answer, "charging_schedule", None),
                datetime.now(UTC),
            )
        return result_of(status), status, profile

    async def _schedule_changed(
        self, session: ChargePointSession, accepted: ChargingProfileRequestAccepted, bound: Any
    ) -> None:
        """Ask the charger for the schedule it now plans and record it for
        the Sender (mod_charging_profiles: the CPO keeps a Sender that set a
        profile informed). A charger that cannot say leaves nothing to tell."""
        p = accepted.payload
        s = self.gw.settings
        try:
            answer = await session.send(
                call.GetCompositeSchedule(
                    connector_id=p.target.ocpp_connector_id or 0,
                    duration=s.charging_profile_active_duration_s,
                ),
                float(s.command_timeout_s),
            )
            now = datetime.now(UTC)
            profile = None
            if str(getattr(answer, "status", "")) == "Accepted":
                profile = active_profile_of(
                    getattr(answer, "schedule_start", None),
                    getattr(answer, "charging_schedule", None),
                    now,
                )
            if profile is None:
                bound.info("charging_profile_schedule_unknown")
                return
            # Keyed by our session, so the changes of one session are read
            # (and PUT) in the order they happened.
            t = p.target
            changed = ActiveChargingProfileChanged(
                **_meta(accepted, now, session_key(t.country_code, t.party_id, p.session_id)),
                payload=ActiveChargingProfileChangedPayload(
                    request_id=p.request_id,
                    session_id=p.session_id,
                    partner_id=p.partner_id,
                    active_profile=profile,
                    at=now,
                ),
            )
            await self.gw.event_log.append([changed])
        except Exception as exc:
            bound.warning("charging_profile_schedule_not_recorded", error=type(exc).__name__)
            return
        bound.info("charging_profile_schedule_recorded")
