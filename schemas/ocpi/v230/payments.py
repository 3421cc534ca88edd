"""Payments module objects of OCPI 2.3.0 (mod_payments.asciidoc, tag v2.3.0;
docs/adr/0047).

The Payment Terminal Provider (PTP) owns both objects: it creates a
Terminal on the CPO's system (POST) and, after the capture at its payment
service provider, posts a FinancialAdviceConfirmation. The CPO assigns its
locations and EVSEs to a terminal (PATCH on the PTP's Sender) and updates
its other fields (PUT).

Unknown fields are kept (docs/adr/0039); known fields are strict, with
three readings where the spec's own examples contradict its tables:

* a Terminal without ``last_updated`` is accepted: the "minimal terminal"
  example of the POST carries only ``terminal_id``; we stamp our receipt.
* ``eft_data`` (card. +) may be absent from a FAILED confirmation: the
  spec's failure example has none, and a refused capture has no EFT data.
* ``total_costs`` given in 2.2.1's shape (``excl_vat``/``incl_vat``, as
  every example of the module is written) is read as the 2.3.0 Price:
  ``before_taxes`` = ``excl_vat``, one ``VAT`` tax of the difference.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, model_validator

from schemas.ocpi.common import CountryCode, DateTime, OcpiModel, PartyId
from schemas.ocpi.locations import GeoLocation
from schemas.ocpi.tariffs import Currency
from schemas.ocpi.types import Url, ci
from schemas.ocpi.v230.types import Price

Ci36 = Annotated[str, ci(36)]
# CiString[1..255]: the lines of eft_data and the capture message.
Line = Annotated[str, ci(255)]


class InvoiceCreator(StrEnum):
    """mod_payments, InvoiceCreator enum: who invoices the driver."""

    CPO = "CPO"  # the invoice is at invoice_base_url + authorization_reference
    PTP = "PTP"  # the terminal shows or hands out the invoice


class CaptureStatusCode(StrEnum):
    """mod_payments, CaptureStatusCode enum: the outcome of the capture."""

    SUCCESS = "SUCCESS"
    PARTIAL_SUCCESS = "PARTIAL_SUCCESS"
    FAILED = "FAILED"


class _TerminalFields(OcpiModel):
    """The Terminal object's fields other than its id (mod_payments,
    Terminal object)."""

    customer_reference: Ci36 | None = None
    party_id: PartyId | None = None
    country_code: CountryCode | None = None
    address: Annotated[str, ci(45)] | None = None
    city: Annotated[str, ci(45)] | None = None
    postal_code: Annotated[str, ci(10)] | None = None
    state: Annotated[str, ci(20)] | None = None
    country: Annotated[str, ci(3)] | None = None
    coordinates: GeoLocation | None = None
    invoice_base_url: Url | None = None
    invoice_creator: InvoiceCreator | None = None
    reference: Ci36 | None = None
    location_ids: list[Ci36] | None = None
    evse_uids: list[Ci36] | None = None
    # Card. 1 in the table; see the module docstring.
    last_updated: DateTime | None = None


class Terminal(_TerminalFields):
    """mod_payments, Terminal object: one physical payment terminal and the
    locations and EVSEs it takes payments for."""

    terminal_id: Ci36


class TerminalActivation(_TerminalFields):
    """The body of the PTP's POST ``/terminals/activate``: a Terminal whose
    ``terminal_id`` is optional (the PTP gives it)."""

    terminal_id: Ci36 | None = None


class TerminalChanges(_TerminalFields):
    """What an operator changes on a PTP's terminal before we PUT it to the
    PTP (mod_payments, PUT Terminal: e.g. ``customer_reference`` and
    ``invoice_base_url``): only the fields given count, ``null`` removes
    one; ``terminal_id`` may be omitted (the URL names the terminal)."""

    terminal_id: Ci36 | None = None


class TerminalAssignment(OcpiModel):
    """What the CPO PATCHes to the PTP's terminal: the locations and EVSEs
    it enables for payments (both lists count; their union of EVSEs)."""

    location_ids: list[Ci36] = Field(default_factory=list)
    evse_uids: list[Ci36] = Field(default_factory=list)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _price_of(value: Any) -> Any:
    """A 2.2.1-shaped Price (the module's examples) as the 2.3.0 Price; any
    other value is left to the Price model to judge."""
    if not isinstance(value, dict) or "before_taxes" in value or "excl_vat" not in value:
        return value
    excl, incl = _decimal(value["excl_vat"]), _decimal(value.get("incl_vat"))
    if excl is None or ("incl_vat" in value and incl is None):
        return value  # not numbers: refused as a Price without before_taxes
    rest = {k: v for k, v in value.items() if k not in ("excl_vat", "incl_vat")}
    price: dict[str, Any] = {**rest, "before_taxes": excl}
    if incl is not None:
        price["taxes"] = [{"name": "VAT", "amount": incl - excl}]
    return price


class FinancialAdviceConfirmation(OcpiModel):
    """mod_payments, Financial Advice Confirmation object: what the PTP
    captured for the session it started with ``authorization_reference``,
    with the EFT data the invoice must carry."""

    id: Ci36
    authorization_reference: Ci36
    total_costs: Price
    currency: Currency
    eft_data: Annotated[list[Line], Field(min_length=1)] | None = None
    capture_status_code: CaptureStatusCode
    capture_status_message: Line | None = None
    last_updated: DateTime

    @model_validator(mode="before")
    @classmethod
    def _price_shape(cls, data: Any) -> Any:
        if isinstance(data, dict) and "total_costs" in data:
            return {**data, "total_costs": _price_of(data["total_costs"])}
        return data

    @model_validator(mode="after")
    def _eft_data_unless_failed(self) -> FinancialAdviceConfirmation:
        if self.eft_data is None and self.capture_status_code is not CaptureStatusCode.FAILED:
            raise ValueError("eft_data is required unless capture_status_code is FAILED")
        return self
