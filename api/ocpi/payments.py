"""Payments module (OCPI 2.3.0 mod_payments), our Receiver interface as CPO,
at ``/ocpi/cpo/2.3.0/payments`` (docs/adr/0047).

A Payment Terminal Provider (PTP), the data owner of both objects:

* ``POST /terminals`` creates one of its terminals on our system (an id
  it sent before is an update); ``GET /terminals/{terminal_id}``
  reads it back, with the locations and EVSEs we assigned to it;
* ``POST /financial-advice-confirmations`` confirms what it captured for
  the session it started with ``authorization_reference`` (an id sent
  before is an update); ``GET /financial-advice-confirmations/{id}``.

A PTP sees only its own objects: another partner's id is 2000 at HTTP 404.
Writes go through the one write path (``producers.payments``).

Our side of the PTP's Sender interface (assign, activate, deactivate) is
the ops API (api/ops/payments.py). ``payments_endpoint`` is our entry in
the 2.3.0 version details.
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Path, Request

from api.auth import Caller, _caller_of
from api.consistency import read_written
from api.deps import ContainerDep, CorrelationIdDep, NowDep
from api.errors import OcpiError, envelope
from api.writes import ExactBody, WritePathDep, body_of
from producers.payments import ADVICES, TERMINALS, decide_post_advice, decide_post_terminal
from producers.write_path import Origin
from schemas.events import Party
from schemas.events.payments import advice_key, terminal_key
from schemas.ocpi.common import fold
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.v230.payments import FinancialAdviceConfirmation, Terminal
from schemas.ocpi.versions import Endpoint, InterfaceRole

log = structlog.get_logger(__name__)

Json = dict[str, Any]

VERSION = "2.3.0"
MODULE = "payments"  # mod_payments, "Module Identifier"
PREFIX = f"/ocpi/cpo/{VERSION}/{MODULE}"

router = APIRouter(prefix=PREFIX, tags=["ocpi: payments (2.3.0, we as CPO)"])

# mod_payments: Terminal.terminal_id and FinancialAdviceConfirmation.id are CiString(36).
TerminalIdPath = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[\x21-\x7E]+$")]
AdviceIdPath = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[\x21-\x7E]+$")]


def payments_endpoint(base_url: str) -> Endpoint:
    """Our Payments endpoint for the 2.3.0 version details: the module's
    RECEIVER (we as CPO); ``/terminals`` and ``/financial-advice-confirmations``
    are below it, as the module's examples place them."""
    return Endpoint(
        identifier=MODULE, role=InterfaceRole.RECEIVER, url=f"{base_url.rstrip('/')}{PREFIX}"
    )


async def ptp_caller(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Caller:
    """A registered partner's token, base64-encoded (OCPI 2.2 and later).

    Payments exists in 2.3.0 only and converts nothing, so it needs no edge
    adapter (docs/adr/0045): a PTP registered for 2.2.1 or 2.3.0 may use it
    (docs/adr/0047; a PTP registers in 2.3.0, or in 2.2.1 where 2.3.0 is
    not offered). A TOKEN_A is 401; a 2.1.1 partner is 2000."""
    found = await _caller_of(request.app.state.partner_tokens, authorization, None)
    if found.with_token_a:
        raise OcpiError(
            OcpiStatus.CLIENT_ERROR,
            "a registration token (TOKEN_A) is valid only on versions and credentials",
            401,
            headers={"WWW-Authenticate": "Token"},
        )
    registered_for = found.partner.version or "2.2.1"
    if registered_for not in ("2.2.1", VERSION):
        raise OcpiError(
            OcpiStatus.CLIENT_ERROR,
            f"this partner registered for OCPI {registered_for}: Payments is an OCPI "
            f"{VERSION} module",
        )
    request.state.partner_id = found.partner.partner_id
    return found


PtpDep = Annotated[Caller, Depends(ptp_caller)]


def _origin(caller: Caller, correlation_id: str) -> Origin:
    role = caller.partner.roles[0]
    return Origin(
        Party(country_code=fold(role.country_code), party_id=fold(role.party_id)), correlation_id
    )


@router.post("/terminals", openapi_extra=body_of(Terminal))
async def post_terminal(
    body: ExactBody,
    caller: PtpDep,
    write_path: WritePathDep,
    correlation_id: CorrelationIdDep,
    now: NowDep,
) -> Json:
    ptp = caller.partner
    terminal_id = body.get("terminal_id") if isinstance(body, dict) else None
    if not isinstance(terminal_id, str) or not terminal_id:
        # The model says what is wrong (2001), without a key to hold.
        Terminal.model_validate(body)
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, "invalid or missing parameters: terminal_id")
    origin = _origin(caller, correlation_id)
    created = await write_path.write(
        TERMINALS,
        terminal_key(ptp.partner_id, terminal_id),
        lambda state: decide_post_terminal(state, ptp=ptp, body=body, now=now, origin=origin),
    )
    # HTTP 200 for a new object too, as every OCPI answer (docs/adr/0039 §2).
    log.info("payments_object_posted", created=created)
    return envelope()


@router.get("/terminals/{terminal_id}")
async def get_terminal(
    terminal_id: TerminalIdPath,
    caller: PtpDep,
    c: ContainerDep,
    write_path: WritePathDep,
) -> Json:
    found = await read_written(
        c.payment_terminals,
        write_path,
        TERMINALS,
        terminal_key(caller.partner.partner_id, terminal_id),
        timeout_s=c.settings.read_own_writes_timeout_s,
        what="Terminal",
    )
    if found is None:
        raise OcpiError(OcpiStatus.CLIENT_ERROR, f"no terminal {terminal_id!r} of yours", 404)
    return envelope(found)


@router.post("/financial-advice-confirmations", openapi_extra=body_of(FinancialAdviceConfirmation))
async def post_financial_advice_confirmation(
    body: ExactBody,
    caller: PtpDep,
    write_path: WritePathDep,
    correlation_id: CorrelationIdDep,
    now: NowDep,
) -> Json:
    ptp = caller.partner
    advice_id = body.get("id") if isinstance(body, dict) else None
    if not isinstance(advice_id, str) or not advice_id:
        FinancialAdviceConfirmation.model_validate(body)
        raise OcpiError(OcpiStatus.INVALID_PARAMETERS, "invalid or missing parameters: id")
    origin = _origin(caller, correlation_id)
    created = await write_path.write(
        ADVICES,
        advice_key(ptp.partner_id, advice_id),
        lambda state: decide_post_advice(state, ptp=ptp, body=body, now=now, origin=origin),
    )
    # HTTP 200 for a new object too, as every OCPI answer (docs/adr/0039 §2).
    log.info("payments_object_posted", created=created)
    return envelope()


@router.get("/financial-advice-confirmations/{advice_id}")
async def get_financial_advice_confirmation(
    advice_id: AdviceIdPath,
    caller: PtpDep,
    c: ContainerDep,
    write_path: WritePathDep,
) -> Json:
    found = await read_written(
        c.payment_advices,
        write_path,
        ADVICES,
        advice_key(caller.partner.partner_id, advice_id),
        timeout_s=c.settings.read_own_writes_timeout_s,
        what="FinancialAdviceConfirmation",
    )
    if found is None:
        raise OcpiError(
            OcpiStatus.CLIENT_ERROR,
            f"no financial advice confirmation {advice_id!r} of yours",
            404,
        )
    return envelope(found)
