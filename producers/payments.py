"""The Payments slice (OCPI 2.3.0 mod_payments, we as CPO; topic
``ocpi.payments.v1``; docs/adr/0047). Pure.

Two aggregates, each under the Payment Terminal Provider (PTP) partner that
owns it:

* **a terminal**: the PTP creates it on our system (``decide_post_terminal``,
  its Receiver POST) or we find it new or changed in its Sender's list
  (``decide_pulled_terminal``, a pull sync); we assign our locations and
  EVSEs to it after the PTP accepted our PATCH (``decide_assigned``),
  update it after the PTP accepted our PUT (``decide_put``), and deactivate
  it (``decide_deactivated``). What we serve back is the PTP's object with
  our assignment in ``location_ids`` / ``evse_uids``.
* **a financial advice confirmation** (``decide_post_advice``, or
  ``decide_pulled_advice`` from a pull): what the PTP captured for the
  session it started with ``authorization_reference``.

Both objects are the PTP's (data owner PTP): a PTP reads and writes only
its own; another partner's id is simply not found. A write older than the
one held (``last_updated``) is recorded, not applied (docs/adr/0004).

``invoice_reference_id`` is the money path's last step: the CDR of a
session a terminal payment started names the invoice we issue, when the
terminal says the CPO invoices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from producers.partners import PartnerState
from producers.write_path import Decision, Origin, RefusedError, Slice, recorded_now
from schemas.events import Party
from schemas.events.payments import (
    AdvicePostedPayload,
    FinancialAdviceConfirmationPosted,
    TerminalActivationRequested,
    TerminalActivationRequestedPayload,
    TerminalAssigned,
    TerminalAssignedPayload,
    TerminalDeactivated,
    TerminalDeactivatedPayload,
    TerminalPosted,
    TerminalPostedPayload,
    TerminalPulled,
    TerminalPut,
    TerminalPutPayload,
    activation_key,
    advice_key,
    terminal_key,
)
from schemas.ocpi.common import fold, format_ocpi_datetime
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.types import to_json
from schemas.ocpi.v230.payments import (
    FinancialAdviceConfirmation,
    InvoiceCreator,
    Terminal,
    TerminalActivation,
    TerminalAssignment,
    TerminalChanges,
)
from schemas.topics import PAYMENTS

__all__ = [
    "ADVICES",
    "TERMINALS",
    "AdviceState",
    "TerminalState",
    "decide_assigned",
    "decide_deactivated",
    "decide_post_advice",
    "decide_post_terminal",
    "decide_pulled_advice",
    "decide_pulled_terminal",
    "decide_put",
    "evolve_advice",
    "evolve_terminal",
    "invoice_reference_id",
    "plan_activation",
]

Json = dict[str, Any]

# The answer of a pulled object's decision that records nothing: the word
# of producers.pull_sync.UNCHANGED (which imports this module).
UNCHANGED = "unchanged"


class TerminalState(BaseModel):
    """One PTP's terminal as we hold it. ``object``: the Terminal we serve
    (the PTP's fields, our assignment, ``last_updated``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ptp_partner_id: str
    terminal_id: str
    ptp_parties: tuple[Party, ...]
    object: Json
    last_updated: datetime
    deactivated: bool = False

    @property
    def location_ids(self) -> list[str]:
        return list(self.object.get("location_ids") or [])

    @property
    def evse_uids(self) -> list[str]:
        return list(self.object.get("evse_uids") or [])

    @property
    def invoice_creator(self) -> str | None:
        value = self.object.get("invoice_creator")
        return value if isinstance(value, str) else None


class AdviceState(BaseModel):
    """One financial advice confirmation, as the PTP last sent it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ptp_partner_id: str
    advice_id: str
    authorization_reference: str
    capture_status_code: str
    object: Json
    last_updated: datetime


def _stamped(obj: Json, at: datetime) -> Json:
    return {**obj, "last_updated": format_ocpi_datetime(at)}


def evolve_terminal(state: TerminalState | None, event: Any) -> TerminalState | None:
    if isinstance(event, TerminalPosted | TerminalPulled):
        p = event.payload
        if state is not None and p.last_updated < state.last_updated:
            return state  # stale: recorded, not applied
        return TerminalState(
            ptp_partner_id=p.ptp_partner_id,
            terminal_id=p.terminal_id,
            ptp_parties=p.ptp_parties,
            object=_stamped(p.object, p.last_updated),
            last_updated=p.last_updated,
            # The PTP posts a terminal when it (re)creates it, after an
            # activation: a deactivated one takes payments again. Its list
            # may still hold one we deactivated: a pull changes nothing there.
            deactivated=(
                state is not None and state.deactivated and isinstance(event, TerminalPulled)
            ),
        )
    if state is None:
        return None  # another aggregate's event, or one before the terminal
    if isinstance(event, TerminalPut):
        put = event.payload
        if put.last_updated < state.last_updated:
            return state
        return state.model_copy(
            update={
                "object": _stamped(put.object, put.last_updated),
                "last_updated": put.last_updated,
            }
        )
    if isinstance(event, TerminalAssigned):
        a = event.payload
        at = max(a.last_updated, state.last_updated)
        assigned = {**state.object, "location_ids": list(a.location_ids)}
        assigned["evse_uids"] = list(a.evse_uids)
        return state.model_copy(update={"object": _stamped(assigned, at), "last_updated": at})
    if isinstance(event, TerminalDeactivated):
        return state.model_copy(update={"deactivated": True})
    return state


def evolve_advice(state: AdviceState | None, event: Any) -> AdviceState | None:
    if not isinstance(event, FinancialAdviceConfirmationPosted):
        return state
    p = event.payload
    if state is not None and p.last_updated < state.last_updated:
        return state
    return AdviceState(
        ptp_partner_id=p.ptp_partner_id,
        advice_id=p.advice_id,
        authorization_reference=p.authorization_reference,
        capture_status_code=p.capture_status_code,
        object=p.object,
        last_updated=p.last_updated,
    )


TERMINALS: Slice[TerminalState] = Slice(
    "payment_terminals",
    PAYMENTS,
    evolve_terminal,
    lambda state: state.model_dump_json().encode(),
    TerminalState.model_validate_json,
)

ADVICES: Slice[AdviceState] = Slice(
    "payment_advices",
    PAYMENTS,
    evolve_advice,
    lambda state: state.model_dump_json().encode(),
    AdviceState.model_validate_json,
)


def parties_of(partner: PartnerState) -> tuple[Party, ...]:
    return tuple(
        Party(country_code=fold(r.country_code), party_id=fold(r.party_id)) for r in partner.roles
    )


def _mismatch(field: str) -> RefusedError:
    return RefusedError(
        OcpiStatus.INVALID_PARAMETERS,
        f"invalid or missing parameters: {field} must be that of the URL",
    )


def decide_post_terminal(
    state: TerminalState | None,
    *,
    ptp: PartnerState,
    body: Any,
    now: datetime,
    origin: Origin,
) -> Decision[bool]:
    """A PTP creates (or sends again) one of its terminals; the answer is
    whether it is new. ``location_ids``/``evse_uids`` it sends are kept
    (a terminal activated with its locations comes with them)."""
    terminal = Terminal.model_validate(body)
    at = terminal.last_updated or now
    event = TerminalPosted(
        **recorded_now(terminal_key(ptp.partner_id, terminal.terminal_id), now, origin),
        payload=TerminalPostedPayload(
            ptp_partner_id=ptp.partner_id,
            terminal_id=terminal.terminal_id,
            ptp_parties=parties_of(ptp),
            last_updated=at,
            object=to_json(terminal),
        ),
    )
    return Decision([event], state is None)


def _as_pulled(terminal: Terminal, now: datetime) -> tuple[Json, datetime]:
    at = terminal.last_updated or now
    return _stamped(to_json(terminal), at), at


def decide_pulled_terminal(
    state: TerminalState | None,
    *,
    ptp: PartnerState,
    item: Any,
    now: datetime,
    origin: Origin,
) -> Decision[str | None]:
    """One terminal of the PTP's Sender list (a pull sync): recorded when it
    is new or changed; ``"unchanged"`` (nothing recorded) when we hold it as
    listed, or hold a newer copy (our assignment or PUT after it), so a
    second pull of the same list records nothing. A terminal without
    ``last_updated`` is dated by its first pull only: held already, it is
    compared without that field."""
    terminal = Terminal.model_validate(item)
    listed, at = _as_pulled(terminal, now)
    if state is not None:
        held = state.object
        if terminal.last_updated is None:
            held = {k: v for k, v in held.items() if k != "last_updated"}
            listed = {k: v for k, v in listed.items() if k != "last_updated"}
        if held == listed or (terminal.last_updated is not None and at < state.last_updated):
            return Decision([], UNCHANGED)
        if terminal.last_updated is None:
            at = max(now, state.last_updated)
    event = TerminalPulled(
        **recorded_now(terminal_key(ptp.partner_id, terminal.terminal_id), now, origin),
        payload=TerminalPostedPayload(
            ptp_partner_id=ptp.partner_id,
            terminal_id=terminal.terminal_id,
            ptp_parties=parties_of(ptp),
            last_updated=at,
            object=to_json(terminal),
        ),
    )
    return Decision([event], None)


def _held(state: TerminalState | None, terminal_id: str) -> TerminalState:
    if state is None:
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS, f"no terminal {terminal_id!r} of this PTP", 404
        )
    return state


def assignment_of(body: Any) -> TerminalAssignment:
    """An ops body naming the locations and EVSEs to enable (both lists,
    either may be empty: an empty pair unassigns the terminal)."""
    return TerminalAssignment.model_validate(body)


def patch_body(assignment: TerminalAssignment, now: datetime) -> Json:
    """What we PATCH to the PTP's terminal (mod_payments, PATCH Terminal)."""
    return {
        "location_ids": list(assignment.location_ids),
        "evse_uids": list(assignment.evse_uids),
        "last_updated": format_ocpi_datetime(now),
    }


def check_assignable(state: TerminalState | None, terminal_id: str) -> TerminalState:
    """Before we PATCH the PTP: a terminal we hold and did not deactivate."""
    held = _held(state, terminal_id)
    if held.deactivated:
        raise RefusedError(OcpiStatus.CLIENT_ERROR, f"terminal {terminal_id!r} is deactivated", 409)
    return held


def decide_assigned(
    state: TerminalState | None,
    *,
    terminal_id: str,
    assignment: TerminalAssignment,
    ptp_status_code: int | None,
    now: datetime,
    origin: Origin,
) -> Decision[Json]:
    """Record the assignment the PTP accepted; answer the terminal as now held."""
    held = check_assignable(state, terminal_id)
    event = TerminalAssigned(
        **recorded_now(terminal_key(held.ptp_partner_id, held.terminal_id), now, origin),
        payload=TerminalAssignedPayload(
            ptp_partner_id=held.ptp_partner_id,
            terminal_id=held.terminal_id,
            location_ids=tuple(assignment.location_ids),
            evse_uids=tuple(assignment.evse_uids),
            last_updated=now,
            ptp_status_code=ptp_status_code,
        ),
    )
    after = evolve_terminal(held, event)
    assert after is not None
    return Decision([event], after.object)


def changes_of(body: Any, terminal_id: str) -> TerminalChanges:
    """An ops body naming the Terminal fields to change (``null`` removes
    one); a ``terminal_id`` in it must be the URL's."""
    changes = TerminalChanges.model_validate(body)
    if changes.terminal_id is not None and fold(changes.terminal_id) != fold(terminal_id):
        raise _mismatch("terminal_id")
    return changes


def put_body(held: TerminalState, changes: TerminalChanges, now: datetime) -> Json:
    """The whole Terminal we PUT to the PTP (mod_payments, PUT Terminal: the
    request body is the updated object): the one we hold, the operator's
    changes over it (a field set to ``null`` removed), stamped ``now``."""
    given = changes.model_dump(mode="json", exclude_unset=True)
    merged = {**held.object, **given, "terminal_id": held.terminal_id}
    merged["last_updated"] = format_ocpi_datetime(now)
    # Checked as a whole: a change may not make the terminal invalid.
    return to_json(Terminal.model_validate({k: v for k, v in merged.items() if v is not None}))


def decide_put(
    state: TerminalState | None,
    *,
    terminal_id: str,
    body: Json,
    ptp_status_code: int | None,
    now: datetime,
    origin: Origin,
) -> Decision[Json]:
    """Record the Terminal the PTP accepted from our PUT (``put_body``);
    answer the terminal as now held."""
    held = check_assignable(state, terminal_id)
    event = TerminalPut(
        **recorded_now(terminal_key(held.ptp_partner_id, held.terminal_id), now, origin),
        payload=TerminalPutPayload(
            ptp_partner_id=held.ptp_partner_id,
            terminal_id=held.terminal_id,
            last_updated=now,
            object=body,
            ptp_status_code=ptp_status_code,
        ),
    )
    after = evolve_terminal(held, event)
    assert after is not None
    return Decision([event], after.object)


def decide_deactivated(
    state: TerminalState | None,
    *,
    terminal_id: str,
    ptp_status_code: int | None,
    now: datetime,
    origin: Origin,
) -> Decision[bool]:
    """Record that the PTP deactivated the terminal at our request; the
    answer is whether it changed anything (a second one records nothing)."""
    held = _held(state, terminal_id)
    if held.deactivated:
        return Decision([], False)
    event = TerminalDeactivated(
        **recorded_now(terminal_key(held.ptp_partner_id, held.terminal_id), now, origin),
        payload=TerminalDeactivatedPayload(
            ptp_partner_id=held.ptp_partner_id,
            terminal_id=held.terminal_id,
            ptp_status_code=ptp_status_code,
        ),
    )
    return Decision([event], True)


def activation_of(body: Any) -> TerminalActivation:
    """An activation request: a Terminal whose id the PTP will give; we
    require the ``reference`` (the serial number or the OEM's mapping) that
    lets the PTP and us tell the terminal apart before it has an id."""
    activation = TerminalActivation.model_validate(body)
    if activation.reference is None:
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS,
            "invalid or missing parameters: reference (the terminal's serial number or "
            "mapping) is required to activate a terminal",
        )
    return activation


def plan_activation(
    *,
    ptp_partner_id: str,
    activation: TerminalActivation,
    ptp_status_code: int | None,
    now: datetime,
    origin: Origin,
) -> TerminalActivationRequested:
    assert activation.reference is not None
    return TerminalActivationRequested(
        **recorded_now(activation_key(ptp_partner_id, activation.reference), now, origin),
        payload=TerminalActivationRequestedPayload(
            ptp_partner_id=ptp_partner_id,
            reference=activation.reference,
            request=to_json(activation),
            ptp_status_code=ptp_status_code,
        ),
    )


def decide_post_advice(
    state: AdviceState | None,
    *,
    ptp: PartnerState,
    body: Any,
    now: datetime,
    origin: Origin,
) -> Decision[bool]:
    """A PTP confirms what it captured; the answer is whether it is new."""
    advice = FinancialAdviceConfirmation.model_validate(body)
    event = FinancialAdviceConfirmationPosted(
        **recorded_now(advice_key(ptp.partner_id, advice.id), now, origin),
        payload=AdvicePostedPayload(
            ptp_partner_id=ptp.partner_id,
            advice_id=advice.id,
            authorization_reference=advice.authorization_reference,
            capture_status_code=advice.capture_status_code.value,
            last_updated=advice.last_updated,
            object=to_json(advice),
        ),
    )
    return Decision([event], state is None)


def decide_pulled_advice(
    state: AdviceState | None,
    *,
    ptp: PartnerState,
    item: Any,
    now: datetime,
    origin: Origin,
) -> Decision[str | None]:
    """One confirmation of the PTP's Sender list (a pull sync), recorded as
    if the PTP had POSTed it when it is new or changed; ``"unchanged"``
    (nothing recorded) when we hold it as listed or a newer copy."""
    advice = FinancialAdviceConfirmation.model_validate(item)
    if state is not None and (
        state.object == to_json(advice) or advice.last_updated < state.last_updated
    ):
        return Decision([], UNCHANGED)
    decided = decide_post_advice(state, ptp=ptp, body=item, now=now, origin=origin)
    return Decision(decided.events, None)


def _serves(terminal: TerminalState, location_id: str, evse_uid: str) -> bool:
    """mod_payments, PATCH Terminal: both lists count, the union of EVSEs."""
    return fold(location_id) in {fold(i) for i in terminal.location_ids} or fold(evse_uid) in {
        fold(u) for u in terminal.evse_uids
    }


def terminal_of_session(
    session: Mapping[str, Any], terminals: Iterable[TerminalState]
) -> TerminalState | None:
    """The active terminal that took the payment for one of our sessions:
    one serving its EVSE, of the PTP whose token started it."""
    token = session.get("cdr_token") or {}
    party = (fold(str(token.get("country_code", ""))), fold(str(token.get("party_id", ""))))
    for terminal in terminals:
        if terminal.deactivated:
            continue
        if party not in {(p.country_code, p.party_id) for p in terminal.ptp_parties}:
            continue
        if _serves(terminal, str(session.get("location_id", "")), str(session.get("evse_uid", ""))):
            return terminal
    return None


def invoice_reference_id(
    session: Mapping[str, Any], terminals: Sequence[TerminalState]
) -> str | None:
    """The CDR's ``invoice_reference_id`` for a session a terminal payment
    started: its ``authorization_reference`` when the terminal's invoices
    are ours (InvoiceCreator CPO: the invoice is at ``invoice_base_url`` +
    ``authorization_reference``), else None (the PTP invoices; mod_payments,
    Transaction flow: an empty field tells the PTP so)."""
    reference = session.get("authorization_reference")
    if not reference:
        return None
    terminal = terminal_of_session(session, terminals)
    if terminal is None or terminal.invoice_creator != InvoiceCreator.CPO.value:
        return None
    return str(reference)
