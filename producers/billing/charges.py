"""Charges (docs/adr/0035, 8): a member's CDR priced by the contract
(``ChargeRecorded``: energy x price per kWh, rounded once, half up, to
the cent, excl. VAT), and the reversal of a charge by a Credit CDR
(``ChargeReversed``, once, even when the Credit CDR is read first).
The billing worker's shell is processors/billing_charges.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from producers.billing.members import member_token_type
from producers.billing.state import ChargeState, CorporationState, MemberState
from producers.write_path import Decision, Origin, recorded_now
from schemas.events.billing import (
    ChargeRecorded,
    ChargeRecordedPayload,
    ChargeReversed,
    ChargeReversedPayload,
)

ChargeEvents = (ChargeRecorded, ChargeReversed)


def evolve_charge(
    state: CorporationState, event: ChargeRecorded | ChargeReversed
) -> CorporationState:
    """Fold a charge and the reversal of one."""
    if isinstance(event, ChargeRecorded):
        c = event.payload
        charge = ChargeState(
            member_id=c.member_id,
            amount=c.amount,
            cost_centre=c.cost_centre,
            energy_kwh=c.energy_kwh,
            price_per_kwh=c.price_per_kwh,
            ended_at=c.end_date_time,
        )
        return state.model_copy(update={"charges": {**state.charges, c.cdr_key: charge}})
    r = event.payload
    held_charge = state.charges.get(r.cdr_key)
    if held_charge is None:
        # The Credit CDR came first (its key may be on another
        # partition): the original, when it comes, is charged nothing.
        held_charge = ChargeState(member_id=r.member_id or "", amount=Decimal(0))
    reversed_ = held_charge.model_copy(
        update={"reversed_by": r.credit_cdr_key, "reversal_amount": r.amount}
    )
    return state.model_copy(update={"charges": {**state.charges, r.cdr_key: reversed_}})


def _decided(
    state: CorporationState, events: list[ChargeRecorded | ChargeReversed]
) -> Decision[CorporationState]:
    after = state
    for event in events:
        after = evolve_charge(after, event)
    return Decision(events, after)


CENT = Decimal("0.01")


def price_charge(energy_kwh: Decimal, price_per_kwh: Decimal) -> Decimal:
    """A charge's amount excl. VAT: the exact product, rounded once, half
    up, to the cent (docs/adr/0035). Invoice lines and totals will add
    these rounded amounts, so the sum of the lines is the total."""
    return (energy_kwh * price_per_kwh).quantize(CENT, rounding=ROUND_HALF_UP)


def _exact(value: Any) -> Decimal:
    # CDR numbers come back from JSON as int or float; repr gives the digits
    # that were written (the shortest form that reads back the same).
    return Decimal(repr(value) if isinstance(value, float) else str(value))


def member_of_token(state: CorporationState, uid: str, token_type: str) -> MemberState | None:
    for member in state.members.values():
        if (
            member.token_uid is not None
            and member.token_uid.upper() == uid.upper()
            and member.token_type == token_type
        ):
            return member
    return None


def _token_member(state: CorporationState, cdr: dict[str, Any]) -> MemberState | None:
    token = cdr.get("cdr_token") or {}
    if token.get("type") not in ("RFID", "APP_USER"):
        return None
    return member_of_token(state, str(token.get("uid")), str(token["type"]))


def decide_charge(
    state: CorporationState | None,
    *,
    corporation_id: str,
    cdr_key_of: Callable[[str], str],
    key: str,
    cdr: dict[str, Any],
    role: str,
    origin: Origin,
    now: datetime,
) -> Decision[CorporationState | None]:
    """The charge of one CDR of a member's token, or the reversal of the
    charge a Credit CDR names (``cdr_key_of`` turns its
    ``credit_reference_id`` into the original's key). Nothing when the CDR
    was charged already, is no member's, or reverses nothing we charged."""
    if state is None:
        return Decision([], None)
    if cdr.get("credit"):
        reference = cdr.get("credit_reference_id")
        original = cdr_key_of(str(reference)) if reference else None
        charged = state.charges.get(original) if original else None
        credited = _token_member(state, cdr)
        if original is None or (charged is not None and charged.reversed_by is not None):
            return Decision([], state)
        if charged is None and credited is None:
            return Decision([], state)  # no member's CDR
        reversal = ChargeReversed(
            **recorded_now(corporation_id, now, origin),
            payload=ChargeReversedPayload(
                corporation_id=corporation_id,
                cdr_key=original,
                credit_cdr_key=key,
                # Before its charge: nothing to reverse, and nothing will be charged.
                amount=-charged.amount if charged is not None else Decimal(0),
                member_id=charged.member_id if charged else credited.member_id,  # type: ignore[union-attr]
                at=now,
            ),
        )
        return _decided(state, [reversal])  # type: ignore[return-value]
    if key in state.charges:
        return Decision([], state)
    token = cdr["cdr_token"]
    member = _token_member(state, cdr)
    if member is None:
        return Decision([], state)
    energy = _exact(cdr["total_energy"])
    price = state.contract.price_per_kwh
    cost = cdr.get("total_cost") or {}
    event = ChargeRecorded(
        **recorded_now(corporation_id, now, origin),
        payload=ChargeRecordedPayload(
            corporation_id=corporation_id,
            member_id=member.member_id,
            cost_centre=member.cost_centre,
            cdr_key=key,
            role="issued" if role == "issued" else "received",
            token_uid=member.token_uid or "",
            token_type=member_token_type(str(token["type"])),
            start_date_time=cdr["start_date_time"],
            end_date_time=cdr["end_date_time"],
            energy_kwh=energy,
            price_per_kwh=price,
            amount=price_charge(energy, price),
            currency=state.currency,
            cdr_cost_excl_vat=_exact(cost["excl_vat"]) if "excl_vat" in cost else None,
            at=now,
        ),
    )
    return _decided(state, [event])  # type: ignore[return-value]
