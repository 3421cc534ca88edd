"""Tariffs module objects of OCPI 2.3.0 (mod_tariffs.asciidoc, tag v2.3.0).

What differs from 2.2.1 (``schemas.ocpi.tariffs``; TariffElement,
PriceComponent and TariffRestrictions are unchanged and reused):

* ``tax_included`` (TaxIncluded, card. 1): whether the PriceComponent
  prices include taxes. Accepted when absent (read as NO), since the
  spec's own CDR example leaves it out of its embedded Tariff. ``vat``
  keeps its 2.2.1 meaning: the VAT rate, omitted when no VAT applies
  (North American tariffs leave it out).
* ``min_price`` / ``max_price`` are PriceLimit (``before_taxes``,
  ``after_taxes``), not Price.
* ``preauthorize_amount`` (for payment terminals, Payments module): also
  declared on our core Tariff, so ours are checked and a Payment Terminal
  Provider reads it from our Tariffs Sender (docs/adr/0047). 2.3.0
  edition 2 moves it out of this table; we keep accepting it.
* ``energy_mix`` has an OpenEnum inside (EnvironmentalImpactCategory).

Numbers are exact Decimals, as in 2.2.1 (docs/adr/0011).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from schemas.ocpi.common import CountryCode, DateTime, OcpiModel, PartyId
from schemas.ocpi.tariffs import (
    Currency,
    ExactNumber,
    NonNegativeNumber,
    TariffElement,
    TariffId,
    TariffType,
    loads_exact,
)
from schemas.ocpi.types import DisplayText, Url
from schemas.ocpi.v230.locations import EnergyMix


class TaxIncluded(StrEnum):
    """mod_tariffs, TaxIncluded enum (new in 2.3.0)."""

    YES = "YES"  # the prices include taxes
    NO = "NO"  # taxes are added on top of the prices
    NOT_APPLICABLE = "N/A"  # no taxes apply to this tariff


class PriceLimit(OcpiModel):
    """mod_tariffs, PriceLimit class (new in 2.3.0)."""

    before_taxes: NonNegativeNumber
    after_taxes: NonNegativeNumber | None = None


class Tariff(OcpiModel):
    """mod_tariffs, Tariff object (2.3.0)."""

    country_code: CountryCode
    party_id: PartyId
    id: TariffId
    currency: Currency
    type: TariffType | None = None
    tariff_alt_text: list[DisplayText] | None = None
    tariff_alt_url: Url | None = None
    min_price: PriceLimit | None = None
    max_price: PriceLimit | None = None
    preauthorize_amount: Annotated[ExactNumber, Field(ge=0)] | None = None
    elements: Annotated[list[TariffElement], Field(min_length=1)]
    # Card. 1, yet the spec's own CDR example embeds a Tariff without it.
    # Absent is read as 2.2.1 read every tariff: prices before taxes (NO);
    # we always send it.
    tax_included: TaxIncluded | None = None
    start_date_time: DateTime | None = None
    end_date_time: DateTime | None = None
    energy_mix: EnergyMix | None = None
    last_updated: DateTime

    @model_validator(mode="after")
    def _consistent_limits(self) -> Tariff:
        # Notes under the Tariff table: both limits apply, before and after
        # taxes separately; a minimum above the maximum cannot be honoured.
        low, high = self.min_price, self.max_price
        if low is not None and high is not None:
            if low.before_taxes > high.before_taxes:
                raise ValueError("min_price.before_taxes is above max_price.before_taxes")
            if (
                low.after_taxes is not None
                and high.after_taxes is not None
                and low.after_taxes > high.after_taxes
            ):
                raise ValueError("min_price.after_taxes is above max_price.after_taxes")
        if (
            self.start_date_time is not None
            and self.end_date_time is not None
            and self.end_date_time <= self.start_date_time
        ):
            raise ValueError("end_date_time must be later than start_date_time")
        return self


class TariffObject(Tariff):
    """A Tariff as the Tariffs module exchanges it: ``tax_included`` is
    required (card. 1). Only a Tariff embedded in a CDR may leave it out
    (see ``Tariff.tax_included``), so a 2.2.1 Tariff sent to a 2.3.0
    Tariffs endpoint is refused rather than read as NO."""

    tax_included: TaxIncluded  # required here


def tariff_from_json(data: str | bytes) -> Tariff:
    """Parse a 2.3.0 Tariff keeping every number exactly as written."""
    return Tariff.model_validate(loads_exact(data))
