"""Ops API of the Payments module (OCPI 2.3.0 mod_payments), we as CPO
towards a Payment Terminal Provider's Sender interface (docs/adr/0047).

* ``PUT /ops/payments/terminals/{ptp_partner_id}/{terminal_id}/assignment``
  ``{"location_ids": [...], "evse_uids": [...]}`` enables our locations and
  EVSEs on a terminal the PTP created on our system (empty lists unassign
  it): we PATCH the PTP's terminal and, once it accepted, record
  ``TerminalAssigned``; the answer is the Terminal as we now serve it.
* ``PUT /ops/payments/terminals/{ptp_partner_id}/{terminal_id}`` with the
  Terminal fields to change (``customer_reference``, ``invoice_base_url``,
  ...; ``null`` removes one): the terminal as we hold it with those changes
  is PUT whole to the PTP's terminal and, once it accepted, recorded
  (``TerminalPut``); the answer is the Terminal as we now serve it.
* ``POST /ops/payments/terminals/{ptp_partner_id}/activate`` with an
  activation Terminal (``reference`` required, ``terminal_id`` not): POSTed
  to the PTP's ``/terminals/activate``; the PTP then POSTs the Terminal to us.
* ``POST /ops/payments/terminals/{ptp_partner_id}/{terminal_id}/deactivate``.
* ``GET /ops/payments/terminals[?ptp_partner_id=]``, ``GET .../{ptp}/{id}``,
  ``GET /ops/payments/financial-advice-confirmations[?ptp_partner_id=&authorization_reference=]``.

The PTP must be registered with a ``payments`` SENDER endpoint (else 409,
2001). Every change goes the one way (``_ptp_first``): the PTP first; a PTP
that cannot be used (no answer, not OCPI, an OCPI error) is HTTP 502 with
3001, and nothing is recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Protocol, TypeVar

import structlog
from fastapi import APIRouter, Body, Depends, Path, Query, Request

from api.deps import CommandChannelDep, ContainerDep, CorrelationIdDep, NowDep
from api.errors import OcpiError, envelope
from api.ops.access import OPS_ACCESS
from api.writes import WritePathDep, checked
from ocpi_hub.bootstrap import Container
from producers.partners import PartnerState
from producers.payments import (
    TERMINALS,
    TerminalState,
    activation_of,
    assignment_of,
    changes_of,
    check_assignable,
    decide_assigned,
    decide_deactivated,
    decide_put,
    patch_body,
    plan_activation,
    put_body,
)
from producers.sent_commands import CommandChannel, CpoAnswer, outbound_headers
from producers.write_path import Decision, Origin, RefusedError, WritePath
from schemas.events import Party
from schemas.events.payments import terminal_key
from schemas.ocpi.common import fold
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.types import to_json

log = structlog.get_logger(__name__)

Json = dict[str, Any]
T = TypeVar("T")
R = TypeVar("R")

router = APIRouter(
    prefix="/ops/payments", tags=["ops: payments (2.3.0, we as CPO)"], dependencies=[OPS_ACCESS]
)

PartnerIdPath = Annotated[str, Path(min_length=1, max_length=40)]
TerminalIdPath = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[\x21-\x7E]+$")]

_ASSIGN_BODY = {
    "description": '`{"location_ids": [...], "evse_uids": [...]}`: our locations and EVSEs '
    "this terminal takes payments for (both count; empty lists unassign it)."
}
_PUT_BODY = {
    "description": "The OCPI 2.3.0 Terminal fields to change (e.g. `customer_reference`, "
    "`invoice_base_url`; `null` removes one): the terminal as we hold it with these "
    "changes is PUT whole to the PTP."
}
_ACTIVATE_BODY = {
    "description": "An OCPI 2.3.0 Terminal without `terminal_id` (the PTP gives it); "
    "`reference` (the serial number or the OEM's mapping) is required."
}


def _us(c: Container) -> Party:
    s = c.settings
    return Party(country_code=fold(s.party_country_code), party_id=fold(s.party_id))


async def _ptp(c: Container, partner_id: str) -> tuple[PartnerState, str]:
    """The registered PTP and its Payments Sender URL (the module's base)."""
    partner = await c.partners.get(partner_id)
    if partner is None or partner.status != "registered":
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, f"no registered partner {partner_id!r}", 404)
    url = partner.endpoint("payments", "SENDER")
    if url is None:
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS,
            f"partner {partner_id!r} has no Payments SENDER endpoint (it is no PTP to us)",
            409,
        )
    return partner, url.rstrip("/")


async def _send(
    c: Container,
    channel: CommandChannel,
    ptp: PartnerState,
    method: str,
    url: str,
    body: Json | None,
    correlation_id: str,
    bound: Any,
) -> CpoAnswer:
    """One request to the PTP with our token for it; 502/3001 unless it
    answered OCPI success."""
    if ptp.our_token_encrypted is None:
        raise OcpiError(OcpiStatus.SERVER_ERROR, "we hold no token for this partner", 500)
    token = c.vault.decrypt(ptp.our_token_encrypted)
    role = ptp.roles[0]
    to = Party(country_code=fold(role.country_code), party_id=fold(role.party_id))
    headers = outbound_headers(
        us=_us(c), to=to, request_id=str(uuid.uuid4()), correlation_id=correlation_id
    )
    answer = await channel.send(method, url, token=token, headers=headers, body=body)
    ok = answer.http_status is not None and answer.http_status < 300
    if not ok or answer.ocpi_status != OcpiStatus.SUCCESS:
        bound.warning(
            "ptp_request_failed",
            http_status=answer.http_status,
            ocpi_status=answer.ocpi_status,
            error=answer.error,
        )
        said = answer.error or f"HTTP {answer.http_status}, OCPI {answer.ocpi_status}"
        raise OcpiError(
            OcpiStatus.UNABLE_TO_USE_CLIENT_API,
            f"the PTP did not accept the request ({said}); nothing recorded",
            502,
        )
    return answer


@dataclass(frozen=True)
class PtpCall:
    """One request to the PTP's Payments Sender: ``path`` below its module URL."""

    method: str
    path: str
    body: Json | None = None


async def _ptp_first(
    c: Container,
    channel: CommandChannel,
    ptp_partner_id: str,
    correlation_id: str,
    call: Callable[[], Awaitable[PtpCall]],
    record: Callable[[CpoAnswer, Origin], Awaitable[T]],
    bound: Any,
) -> T:
    """The one way we change what a PTP owns: the registered PTP is found,
    ``call`` builds the request (it may refuse first: nothing sent), the PTP
    must accept it (else 502/3001 and nothing recorded, as for sent
    commands, docs/adr/0019), then ``record`` writes what it accepted."""
    ptp, base = await _ptp(c, ptp_partner_id)
    request = await call()
    answer = await _send(
        c,
        channel,
        ptp,
        request.method,
        f"{base}{request.path}",
        request.body,
        correlation_id,
        bound,
    )
    recorded = await record(answer, Origin(_us(c), correlation_id))
    bound.info("ptp_change_recorded", method=request.method, path=request.path)
    return recorded


class TerminalDecide(Protocol[R]):
    """How ``producers.payments`` records a terminal change the PTP accepted
    (``decide_assigned``, ``decide_put``, ``decide_deactivated``, their
    own terms bound)."""

    def __call__(
        self,
        state: TerminalState | None,
        /,
        *,
        terminal_id: str,
        ptp_status_code: int | None,
        now: datetime,
        origin: Origin,
    ) -> Decision[R]: ...


@dataclass(frozen=True)
class TerminalChange:
    """A change to one terminal we hold, by the routes below: the path's
    PTP and terminal, and what sends it and records it."""

    ptp_partner_id: str
    terminal_id: str
    c: Container
    channel: CommandChannel
    write_path: WritePath
    correlation_id: str
    now: datetime

    @property
    def path(self) -> str:
        return f"/terminals/{self.terminal_id}"

    async def apply(
        self, call: Callable[[TerminalState | None], tuple[PtpCall, TerminalDecide[R]]]
    ) -> R:
        """``_ptp_first`` for the terminal: ``call`` sees it as of its last
        recorded write (the decision state) and gives the request and how to
        record it; that decision records, under the terminal's key, what the
        PTP accepted."""
        key = terminal_key(self.ptp_partner_id, self.terminal_id)
        sent: list[tuple[PtpCall, TerminalDecide[R]]] = []

        async def request() -> PtpCall:
            held: TerminalState | None = await self.write_path.state(TERMINALS, key)
            sent.append(call(held))
            return sent[0][0]

        async def record(answer: CpoAnswer, origin: Origin) -> R:
            decide = sent[0][1]
            return await self.write_path.write(
                TERMINALS,
                key,
                lambda state: decide(
                    state,
                    terminal_id=self.terminal_id,
                    ptp_status_code=answer.ocpi_status,
                    now=self.now,
                    origin=origin,
                ),
            )

        bound = log.bind(ptp_partner_id=self.ptp_partner_id, terminal_id=self.terminal_id)
        return await _ptp_first(
            self.c, self.channel, self.ptp_partner_id, self.correlation_id, request, record, bound
        )


def _terminal_change(
    ptp_partner_id: PartnerIdPath,
    terminal_id: TerminalIdPath,
    c: ContainerDep,
    channel: CommandChannelDep,
    write_path: WritePathDep,
    correlation_id: CorrelationIdDep,
    now: NowDep,
) -> TerminalChange:
    return TerminalChange(ptp_partner_id, terminal_id, c, channel, write_path, correlation_id, now)


TerminalChangeDep = Annotated[TerminalChange, Depends(_terminal_change)]


@router.put("/terminals/{ptp_partner_id}/{terminal_id}/assignment")
async def assign_terminal(
    change: TerminalChangeDep,
    request: Request,
    body: Annotated[Any, Body(**_ASSIGN_BODY)] = None,
) -> Json:
    assignment = assignment_of(checked(request, body))

    def call(held: TerminalState | None) -> tuple[PtpCall, TerminalDecide[Json]]:
        check_assignable(held, change.terminal_id)
        patch = PtpCall("PATCH", change.path, patch_body(assignment, change.now))
        return patch, partial(decide_assigned, assignment=assignment)

    return envelope(await change.apply(call))


@router.put("/terminals/{ptp_partner_id}/{terminal_id}")
async def put_terminal(
    change: TerminalChangeDep,
    request: Request,
    body: Annotated[Any, Body(**_PUT_BODY)] = None,
) -> Json:
    changes = changes_of(checked(request, body), change.terminal_id)

    def call(held: TerminalState | None) -> tuple[PtpCall, TerminalDecide[Json]]:
        whole = put_body(check_assignable(held, change.terminal_id), changes, change.now)
        return PtpCall("PUT", change.path, whole), partial(decide_put, body=whole)

    return envelope(await change.apply(call))


@router.post("/terminals/{ptp_partner_id}/activate")
async def activate_terminal(
    ptp_partner_id: PartnerIdPath,
    c: ContainerDep,
    channel: CommandChannelDep,
    write_path: WritePathDep,
    correlation_id: CorrelationIdDep,
    now: NowDep,
    request: Request,
    body: Annotated[Any, Body(**_ACTIVATE_BODY)] = None,
) -> Json:
    activation = activation_of(checked(request, body))

    async def call() -> PtpCall:
        return PtpCall("POST", "/terminals/activate", to_json(activation))

    async def record(answer: CpoAnswer, origin: Origin) -> Json:
        event = plan_activation(
            ptp_partner_id=ptp_partner_id,
            activation=activation,
            ptp_status_code=answer.ocpi_status,
            now=now,
            origin=origin,
        )
        await write_path.record([event])
        return {"reference": activation.reference, "ptp_answer": answer.data}

    bound = log.bind(ptp_partner_id=ptp_partner_id, reference=activation.reference)
    return envelope(
        await _ptp_first(c, channel, ptp_partner_id, correlation_id, call, record, bound)
    )


@router.post("/terminals/{ptp_partner_id}/{terminal_id}/deactivate")
async def deactivate_terminal(change: TerminalChangeDep) -> Json:
    def call(held: TerminalState | None) -> tuple[PtpCall, TerminalDecide[bool]]:
        if held is None:
            raise RefusedError(
                OcpiStatus.INVALID_PARAMETERS,
                f"no terminal {change.terminal_id!r} of this PTP",
                404,
            )
        return PtpCall("POST", f"{change.path}/deactivate"), decide_deactivated

    changed = await change.apply(call)
    return envelope({"deactivated": True, "changed": changed})


@router.get("/terminals")
async def list_terminals(
    c: ContainerDep,
    ptp_partner_id: Annotated[str | None, Query(max_length=40)] = None,
) -> Json:
    return envelope(await c.payment_terminals.listed(ptp_partner_id))


@router.get("/terminals/{ptp_partner_id}/{terminal_id}")
async def get_terminal(
    ptp_partner_id: PartnerIdPath,
    terminal_id: TerminalIdPath,
    write_path: WritePathDep,
) -> Json:
    """As of its last recorded write (the decision state, not the view)."""
    held: TerminalState | None = await write_path.state(
        TERMINALS, terminal_key(ptp_partner_id, terminal_id)
    )
    if held is None:
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS, f"no terminal {terminal_id!r} of this PTP", 404
        )
    return envelope(held.model_dump(mode="json"))


@router.get("/financial-advice-confirmations")
async def list_advices(
    c: ContainerDep,
    ptp_partner_id: Annotated[str | None, Query(max_length=40)] = None,
    authorization_reference: Annotated[str | None, Query(max_length=36)] = None,
) -> Json:
    listed = await c.payment_advices.listed(
        ptp_partner_id=ptp_partner_id, authorization_reference=authorization_reference
    )
    return envelope(listed)
