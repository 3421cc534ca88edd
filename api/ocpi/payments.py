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
Both objects take the same two routes (``_post``, ``_get``), told apart by
a ``PtpObject``. Writes go through the one write path (``producers.payments``).

The caller is the usual registered one (``api.auth.registered_caller``):
Payments exists in OCPI 2.3.0 only and converts nothing (docs/adr/0045),
so a PTP registered for 2.3.0 uses it; a partner registered for another
version is 2000, a TOKEN_A 401, and 3002 while 2.3.0 is not offered.

Our side of the PTP's Sender interface (assign, PUT, activate,
deactivate) is the ops API (api/ops/payments.py); its lists are pulled by
``ocpi-hub partners sync-payment-terminals`` / ``sync-payment-advices``
(producers/pull_sync.py). ``payments_endpoint`` is our entry in
the 2.3.0 version details.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Protocol

import structlog
from fastapi import APIRouter, Path

from api.auth import Caller, RegisteredCallerDep
from api.consistency import ObjectView, read_written
from api.deps import ContainerDep, CorrelationIdDep, NowDep
from api.errors import OcpiError, envelope
from api.writes import ExactBody, WritePathDep, body_of
from ocpi_hub.bootstrap import Container
from producers.partners import PartnerState
from producers.payments import ADVICES, TERMINALS, decide_post_advice, decide_post_terminal
from producers.write_path import Decision, Origin, Slice, WritePath
from schemas.events import Party
from schemas.events.payments import advice_key, terminal_key
from schemas.ocpi.common import OcpiModel, fold
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


class PostDecision(Protocol):
    """How the slice decides a PTP's POST of one of its objects
    (``producers.payments.decide_post_*``); the answer: whether it is new."""

    def __call__(
        self, state: Any, *, ptp: PartnerState, body: Any, now: datetime, origin: Origin
    ) -> Decision[bool]: ...


@dataclass(frozen=True)
class PtpObject:
    """One of the PTP's two objects as our Receiver takes it: its model, its
    id field, where it is written and read, and how a POST is decided."""

    what: str  # its name in answers
    model: type[OcpiModel]
    id_field: str
    slice: Slice[Any]
    key: Callable[[str, str], str]  # (PTP partner id, object id) -> aggregate key
    decide: PostDecision
    view: Callable[[Container], ObjectView[Any]]


TERMINAL = PtpObject(
    "terminal",
    Terminal,
    "terminal_id",
    TERMINALS,
    terminal_key,
    decide_post_terminal,
    lambda c: c.payment_terminals,
)
ADVICE = PtpObject(
    "financial advice confirmation",
    FinancialAdviceConfirmation,
    "id",
    ADVICES,
    advice_key,
    decide_post_advice,
    lambda c: c.payment_advices,
)


async def _post(
    kind: PtpObject,
    body: Any,
    caller: Caller,
    write_path: WritePath,
    correlation_id: str,
    now: datetime,
) -> Json:
    """A PTP creates (or sends again) one of its objects, keyed under itself."""
    ptp = caller.partner
    object_id = body.get(kind.id_field) if isinstance(body, dict) else None
    if not isinstance(object_id, str) or not object_id:
        # The model says what is wrong (2001), without a key to hold.
        kind.model.model_validate(body)
        raise OcpiError(
            OcpiStatus.INVALID_PARAMETERS, f"invalid or missing parameters: {kind.id_field}"
        )
    role = ptp.roles[0]
    party = Party(country_code=fold(role.country_code), party_id=fold(role.party_id))
    origin = Origin(party, correlation_id)
    created = await write_path.write(
        kind.slice,
        kind.key(ptp.partner_id, object_id),
        lambda state: kind.decide(state, ptp=ptp, body=body, now=now, origin=origin),
    )
    # HTTP 200 for a new object too, as every OCPI answer (docs/adr/0039 §2).
    log.info("payments_object_posted", what=kind.what, created=created)
    return envelope()


async def _get(
    kind: PtpObject, object_id: str, caller: Caller, c: Container, write_path: WritePath
) -> Json:
    """One of the PTP's own objects, once the view holds its last write;
    another PTP's id is simply not found (2000 at HTTP 404)."""
    found = await read_written(
        kind.view(c),
        write_path,
        kind.slice,
        kind.key(caller.partner.partner_id, object_id),
        timeout_s=c.settings.read_own_writes_timeout_s,
        what=kind.model.__name__,
    )
    if found is None:
        raise OcpiError(OcpiStatus.CLIENT_ERROR, f"no {kind.what} {object_id!r} of yours", 404)
    return envelope(found)


@router.post("/terminals", openapi_extra=body_of(Terminal))
async def post_terminal(
    body: ExactBody,
    caller: RegisteredCallerDep,
    write_path: WritePathDep,
    correlation_id: CorrelationIdDep,
    now: NowDep,
) -> Json:
    return await _post(TERMINAL, body, caller, write_path, correlation_id, now)


@router.get("/terminals/{terminal_id}")
async def get_terminal(
    terminal_id: TerminalIdPath,
    caller: RegisteredCallerDep,
    c: ContainerDep,
    write_path: WritePathDep,
) -> Json:
    return await _get(TERMINAL, terminal_id, caller, c, write_path)


@router.post("/financial-advice-confirmations", openapi_extra=body_of(FinancialAdviceConfirmation))
async def post_financial_advice_confirmation(
    body: ExactBody,
    caller: RegisteredCallerDep,
    write_path: WritePathDep,
    correlation_id: CorrelationIdDep,
    now: NowDep,
) -> Json:
    return await _post(ADVICE, body, caller, write_path, correlation_id, now)


@router.get("/financial-advice-confirmations/{advice_id}")
async def get_financial_advice_confirmation(
    advice_id: AdviceIdPath,
    caller: RegisteredCallerDep,
    c: ContainerDep,
    write_path: WritePathDep,
) -> Json:
    return await _get(ADVICE, advice_id, caller, c, write_path)
