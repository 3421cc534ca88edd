"""Events of the Payments slice (OCPI 2.3.0 mod_payments, we as CPO), on
topic ``ocpi.payments.v1`` (docs/adr/0047).

Two aggregates share the topic, each keyed under the Payment Terminal
Provider (PTP) partner that owns it, so one PTP's terminal id or
confirmation id never collides with another's:

* a terminal, ``PTP_PARTNER_ID/terminal/TERMINAL_ID`` (id folded): the PTP
  created or changed it (POSTed to us, or found changed in its Sender's
  list when we pulled it), we assigned our locations and EVSEs to it, we
  PUT it with our changes, we deactivated it;
* a financial advice confirmation, ``PTP_PARTNER_ID/advice/ID`` (folded).

``TerminalActivationRequested`` is a fact about a request we made to the
PTP (no state decides on it), keyed ``PTP_PARTNER_ID/activation/REFERENCE``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events.envelope import EventMeta, Party
from schemas.ocpi.common import fold
from schemas.ocpi.types import ci

Ci36 = Annotated[str, ci(36)]
PartnerId = Annotated[str, Field(min_length=1, max_length=40)]


def terminal_key(ptp_partner_id: str, terminal_id: str) -> str:
    return f"{ptp_partner_id}/terminal/{fold(terminal_id)}"


def advice_key(ptp_partner_id: str, advice_id: str) -> str:
    return f"{ptp_partner_id}/advice/{fold(advice_id)}"


def activation_key(ptp_partner_id: str, reference: str) -> str:
    return f"{ptp_partner_id}/activation/{fold(reference)}"


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TerminalPostedPayload(_Payload):
    """``object``: the Terminal as the PTP sent it (unknown fields kept,
    docs/adr/0039), ``last_updated`` stamped with our receipt when it had
    none. ``ptp_parties``: the PTP's parties when it posted, which the CDR
    builder matches against a session's token."""

    ptp_partner_id: PartnerId
    terminal_id: Ci36
    ptp_parties: tuple[Party, ...]
    last_updated: datetime
    object: dict[str, Any]


class TerminalPosted(EventMeta):
    """A PTP created (or sent again) one of its terminals on our system
    (POST ``/payments/terminals``)."""

    event_type: Literal["TerminalPosted"] = "TerminalPosted"
    schema_version: Literal[1] = 1
    payload: TerminalPostedPayload


class TerminalPulled(EventMeta):
    """We pulled the PTP's terminal from its Sender (GET ``/terminals``) and
    it was new or changed to us. The payload is that of ``TerminalPosted``
    (the Terminal as listed); unlike a POST, a pull does not make a terminal
    we deactivated take payments again: the PTP's list may hold it still."""

    event_type: Literal["TerminalPulled"] = "TerminalPulled"
    schema_version: Literal[1] = 1
    payload: TerminalPostedPayload


class TerminalPutPayload(_Payload):
    """``object``: the whole Terminal we PUT to the PTP's Sender (its fields
    as we held them with the operator's changes), which the PTP accepted
    with ``ptp_status_code``."""

    ptp_partner_id: PartnerId
    terminal_id: Ci36
    last_updated: datetime
    object: dict[str, Any]
    ptp_status_code: int | None = None


class TerminalPut(EventMeta):
    """We (the CPO) updated a PTP's terminal (PUT on its Sender, e.g. its
    ``customer_reference`` or ``invoice_base_url``) and the PTP accepted."""

    event_type: Literal["TerminalPut"] = "TerminalPut"
    schema_version: Literal[1] = 1
    payload: TerminalPutPayload


class TerminalAssignedPayload(_Payload):
    """Our locations and EVSEs enabled on the terminal, as we PATCHed them to
    the PTP (which answered ``ptp_status_code``)."""

    ptp_partner_id: PartnerId
    terminal_id: Ci36
    location_ids: tuple[Ci36, ...]
    evse_uids: tuple[Ci36, ...]
    last_updated: datetime
    ptp_status_code: int | None = None


class TerminalAssigned(EventMeta):
    """We (the CPO) assigned locations and EVSEs to a PTP's terminal."""

    event_type: Literal["TerminalAssigned"] = "TerminalAssigned"
    schema_version: Literal[1] = 1
    payload: TerminalAssignedPayload


class TerminalDeactivatedPayload(_Payload):
    ptp_partner_id: PartnerId
    terminal_id: Ci36
    ptp_status_code: int | None = None


class TerminalDeactivated(EventMeta):
    """We asked the PTP to deactivate a terminal and it accepted: it takes
    no payment at our chargers any more."""

    event_type: Literal["TerminalDeactivated"] = "TerminalDeactivated"
    schema_version: Literal[1] = 1
    payload: TerminalDeactivatedPayload


class TerminalActivationRequestedPayload(_Payload):
    """``request``: the activation Terminal we POSTed to the PTP."""

    ptp_partner_id: PartnerId
    reference: Ci36
    request: dict[str, Any]
    ptp_status_code: int | None = None


class TerminalActivationRequested(EventMeta):
    """We asked a PTP to activate a terminal (an OEM's integrated one); the
    PTP then POSTs the Terminal to us."""

    event_type: Literal["TerminalActivationRequested"] = "TerminalActivationRequested"
    schema_version: Literal[1] = 1
    payload: TerminalActivationRequestedPayload


class AdvicePostedPayload(_Payload):
    """``object``: the FinancialAdviceConfirmation as received; beside it
    what readers select on."""

    ptp_partner_id: PartnerId
    advice_id: Ci36
    authorization_reference: Ci36
    capture_status_code: str
    last_updated: datetime
    object: dict[str, Any]


class FinancialAdviceConfirmationPosted(EventMeta):
    """A PTP confirmed what it captured for a session (POST
    ``/payments/financial-advice-confirmations``), or we pulled the
    confirmation from its Sender and it was new or changed to us."""

    event_type: Literal["FinancialAdviceConfirmationPosted"] = "FinancialAdviceConfirmationPosted"
    schema_version: Literal[1] = 1
    payload: AdvicePostedPayload


TerminalEvent = (
    TerminalPosted | TerminalPulled | TerminalPut | TerminalAssigned | TerminalDeactivated
)
