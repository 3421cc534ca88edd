"""Charges of corporations' members (issue 14, docs/adr/0035).

Every CDR on ``ocpi.cdrs.v1`` (ours as CPO, ``CdrIssued``, or a partner
CPO's, ``CdrReceived``) whose token is one of ours issued to a member
becomes a ``ChargeRecorded`` of the member's corporation, priced by its
contract; a Credit CDR becomes a ``ChargeReversed`` of the charge it
credits. The corporation is the token's ``group_id`` (set when the member
activated, producers/billing/members.py: ``member_token``), read from the tokens
slice's state; the charge is decided through the write path on the
corporation's aggregate, which holds every charged CDR key, so a CDR read
again (a restart, a rebalance) is charged once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from processors.consuming import consume
from producers import tokens
from producers.billing.aggregate import SLICE as BILLING_SLICE
from producers.billing.charges import decide_charge
from producers.billing.state import CorporationState
from producers.write_path import Decision, Origin, WritePath
from schemas.events import CdrIssued, CdrReceived, Party
from schemas.events.cdrs import cdr_key
from schemas.events.tokens import token_key
from schemas.ocpi.common import fold
from schemas.topics import CDRS

log = structlog.get_logger(__name__)

_CORPORATION_ID = re.compile(r"^[a-z0-9]{12}$")


@dataclass
class ChargeRecorder:
    write_path: WritePath
    us: Party
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def corporation_of(self, cdr: dict[str, object]) -> str | None:
        """The corporation of the CDR's token, when the token is ours and a
        member's."""
        token = cdr.get("cdr_token")
        if not isinstance(token, dict):
            return None
        if (fold(str(token.get("country_code"))), fold(str(token.get("party_id")))) != (
            fold(self.us.country_code),
            fold(self.us.party_id),
        ):
            return None
        key = token_key(
            str(token["country_code"]),
            str(token["party_id"]),
            str(token["uid"]),
            str(token["type"]),
        )
        state = await self.write_path.state(tokens.SLICE, key)
        group = (state.token or {}).get("group_id") if state is not None else None
        corporation = str(group).lower() if group else None
        return corporation if corporation and _CORPORATION_ID.match(corporation) else None

    async def handle(self, event: CdrIssued | CdrReceived) -> int:
        """Record the charge (or reversal) of one CDR; how many events."""
        p = event.payload
        cdr = dict(p.cdr)
        corporation = await self.corporation_of(cdr)
        if corporation is None:
            return 0
        role = "issued" if isinstance(event, CdrIssued) else "received"
        origin = Origin(self.us, f"charge-{event.event_id}")
        now = self.clock()
        decision_events: list[int] = []

        def decide(
            state: CorporationState | None,
        ) -> Decision[CorporationState | None]:
            decided = decide_charge(
                state,
                corporation_id=corporation,
                cdr_key_of=lambda reference: cdr_key(p.country_code, p.party_id, reference),
                key=p.cdr_key,
                cdr=cdr,
                role=role,
                origin=origin,
                now=now,
            )
            decision_events.append(len(decided.events))
            return decided

        await self.write_path.write(BILLING_SLICE, corporation, decide)
        recorded = decision_events[-1] if decision_events else 0
        if recorded:
            log.info("billing_charge_recorded", cdr_key=p.cdr_key, corporation_id=corporation)
        return recorded


async def run_charges(
    recorder: ChargeRecorder, bootstrap: str, prefix: str, stop: asyncio.Event
) -> None:
    """Consume the CDR topic in the charges' group until ``stop``; offsets
    committed after each batch (a batch handled again charges nothing new)."""

    async def handle(event: object, offset: int) -> None:
        if isinstance(event, CdrIssued | CdrReceived):
            await recorder.handle(event)

    await consume(
        bootstrap,
        prefix + CDRS.name,
        f"{prefix}ocpi-hub-billing-charges",
        handle,
        stop,
        name="billing_charges",
    )
