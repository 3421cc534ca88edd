"""Tariffs module objects (OCPI 2.2.1, mod_tariffs.asciidoc), plus the Price
class of types.asciidoc that tariffs and CDRs share.

Text of the spec: tag ``v2.2.1-d2`` with the errata of the
``release-2.2.1-bugfixes`` branch. For this module the errata only touch prose
(a note that OCPI 3.0 drops ``step_size``, and corrected numbers in the
"switching to Free-of-Charge Tariff Element" example); no field limit changed.

Numbers. types.asciidoc, number: "Numbers in OCPI are formatted as JSON
numbers." Every money amount, percentage and threshold here is a
``decimal.Decimal`` (``ExactNumber``) so that what a partner sent is what we
keep, compare and send back; no arithmetic is ever done on floats.

* Exact parsing needs the JSON text: ``loads_exact`` / ``tariff_from_json``
  decode with ``json.loads(parse_float=Decimal)``. pydantic's own JSON mode
  (``model_validate_json``) reads numbers as binary floats first; we accept
  such a float only when its shortest form has at most 15 significant digits
  (``sys.float_info.dig``), i.e. when it is certainly the number that was
  written, and refuse it otherwise. Strings ("0.25") and booleans are refused:
  the spec wants JSON numbers.
* Exact writing: pydantic can only emit a Decimal as a JSON *string*, which
  would put ``"price": "0.25"`` on the wire. In JSON mode an ``ExactNumber``
  is therefore handed to the encoder as an int when integral, else as the one
  float whose shortest form prints exactly the same digits (checked; a
  Decimal that cannot be printed exactly makes serialisation fail). That
  float exists only for printing.

Fields are declared in the spec's order. Optional fields default to ``None``
and are left out of a dump by ``types.to_json``.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import orjson
from pydantic import (
    AfterValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    model_validator,
)

from schemas.ocpi.common import CountryCode, DateTime, OcpiModel, PartyId
from schemas.ocpi.limits import NUMBER_FIELD_BOUND
from schemas.ocpi.locations import EnergyMix
from schemas.ocpi.types import DisplayText, Int, Url, ci

TariffId = Annotated[str, ci(36)]  # mod_tariffs, Tariff.id: CiString(36)

# --------------------------------------------------------------------------
# Exact numbers
# --------------------------------------------------------------------------

_FLOAT_SAFE_DIGITS = sys.float_info.dig  # 15: decimal -> double -> decimal is exact


def _significant_digits(value: Decimal) -> int:
    return len(value.normalize().as_tuple().digits)


def _exact_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):  # bool is an int subclass; JSON true is not a number
        raise ValueError("must be a JSON number, not a boolean")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
        if number.is_finite() and _significant_digits(number) > _FLOAT_SAFE_DIGITS:
            raise ValueError(
                "a binary float with more than 15 significant digits may not be the number "
                "that was sent; decode the JSON with Decimal (tariffs.loads_exact)"
            )
    else:
        raise ValueError("must be a JSON number")
    if not number.is_finite():
        raise ValueError("must be a finite number")
    if abs(number) >= NUMBER_FIELD_BOUND:
        # What the views hold (schemas/ocpi/limits.py, docs/adr/0027).
        raise ValueError(f"must be below 10^14 in magnitude, not {number}")
    return number


def _json_number(value: Decimal) -> int | float:
    if value == value.to_integral_value():
        return int(value)
    printed = float(value)
    if Decimal(repr(printed)) != value:
        raise ValueError(f"{value} cannot be written as a JSON number without changing it")
    return printed


# types.asciidoc, number. See the module docstring for the parsing and printing rules.
ExactNumber = Annotated[
    Decimal,
    PlainValidator(_exact_decimal),
    PlainSerializer(_json_number, when_used="json"),
]
NonNegativeNumber = Annotated[ExactNumber, Field(ge=0)]


def loads_exact(data: str | bytes) -> Any:
    """``json.loads`` that turns every JSON number with a fraction or an
    exponent into a Decimal, digit for digit."""
    return json.loads(data, parse_float=Decimal, parse_constant=_not_a_json_number)


def _not_a_json_number(name: str) -> Any:
    # json.loads takes NaN and Infinity, which JSON does not have.
    raise ValueError(f"{name} is not a JSON value")


def _decimal_text(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(str(value).encode())
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps_exact(data: Any) -> bytes:
    """JSON text in which every Decimal is a JSON number printing its digits
    as they are (the inverse of ``loads_exact``)."""
    return orjson.dumps(data, default=_decimal_text)


def exact_numbers(data: Any) -> Any:
    """The JSON form (numbers as the floats that print them) with every
    fractional number as its Decimal: the shortest text of a float is the
    text it was made from, so nothing changes."""
    return loads_exact(orjson.dumps(data, default=_decimal_text))


def json_numbers(data: Any) -> Any:
    """The inverse of ``exact_numbers``: Decimals as the floats that print
    them (the form stored in a view and sent on the wire)."""
    return orjson.loads(dumps_exact(data))


# --------------------------------------------------------------------------
# Enums (mod_tariffs, "Data types")
# --------------------------------------------------------------------------


class DayOfWeek(StrEnum):
    """mod_tariffs, DayOfWeek enum. Declared Monday first, so the position is
    ``datetime.weekday()``."""

    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


class ReservationRestrictionType(StrEnum):
    """mod_tariffs, ReservationRestrictionType enum."""

    RESERVATION = "RESERVATION"
    RESERVATION_EXPIRES = "RESERVATION_EXPIRES"


class TariffDimensionType(StrEnum):
    """mod_tariffs, TariffDimensionType enum. ``step_size`` multipliers:
    ENERGY 1 Wh, PARKING_TIME and TIME 1 second, FLAT none."""

    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class TariffType(StrEnum):
    """mod_tariffs, TariffType enum."""

    AD_HOC_PAYMENT = "AD_HOC_PAYMENT"
    PROFILE_CHEAP = "PROFILE_CHEAP"
    PROFILE_FAST = "PROFILE_FAST"
    PROFILE_GREEN = "PROFILE_GREEN"
    REGULAR = "REGULAR"


# --------------------------------------------------------------------------
# Field types
# --------------------------------------------------------------------------

# TariffRestrictions.start_time/end_time: string(5), regex ([0-1][0-9]|2[0-3]):[0-5][0-9].
LocalTimeOfDay = Annotated[str, StringConstraints(pattern=r"^([0-1][0-9]|2[0-3]):[0-5][0-9]$")]


def _real_date(value: str) -> str:
    # The spec's regex admits 2019-02-31; a date restriction must name a real day.
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a calendar date") from None
    return value


# TariffRestrictions.start_date/end_date: string(10), regex
# ([12][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]).
LocalDate = Annotated[
    str,
    StringConstraints(pattern=r"^([12][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"),
    AfterValidator(_real_date),
]

# Tariff.currency: string(3), "ISO-4217 code". ISO publishes the alphabetic
# codes in upper case and the field is a case-sensitive string.
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]

# PriceComponent.vat: a percentage. The spec gives no upper bound; above 100 %
# is certainly a unit mistake (0.2 vs 20 is not catchable, 2000 is).
VatPercentage = Annotated[ExactNumber, Field(ge=0, le=100)]

Seconds = Annotated[Int, Field(ge=0)]

# --------------------------------------------------------------------------
# Classes
# --------------------------------------------------------------------------


class Price(OcpiModel):
    """types.asciidoc, Price class: an amount excluding and (optionally)
    including VAT. Negative amounts are allowed: Credit CDRs carry negated
    totals (mod_cdrs, "Credit CDRs")."""

    excl_vat: ExactNumber
    incl_vat: ExactNumber | None = None


class PriceComponent(OcpiModel):
    """mod_tariffs, PriceComponent class."""

    type: TariffDimensionType
    # "Price per unit (excl. VAT)". The spec gives no sign; a negative unit
    # price would make using more cheaper, which 2.2.1 has no notion of, so
    # it is refused.
    price: NonNegativeNumber
    # "If omitted, no VAT is applicable. Not providing a VAT is different
    # from 0% VAT."
    vat: VatPercentage | None = None
    # int, card. 1. Zero is allowed: the spec's own Free of Charge example
    # (tariff_5_free_of_charge.json) sends "step_size": 0 on a FLAT component.
    step_size: Seconds


class TariffRestrictions(OcpiModel):
    """mod_tariffs, TariffRestrictions class. All set restrictions must hold
    (logical AND); times and dates are local to the Location's time zone."""

    start_time: LocalTimeOfDay | None = None
    end_time: LocalTimeOfDay | None = None
    start_date: LocalDate | None = None
    end_date: LocalDate | None = None
    min_kwh: ExactNumber | None = None
    max_kwh: ExactNumber | None = None
    min_current: ExactNumber | None = None
    max_current: ExactNumber | None = None
    min_power: ExactNumber | None = None
    max_power: ExactNumber | None = None
    min_duration: Seconds | None = None
    max_duration: Seconds | None = None
    day_of_week: list[DayOfWeek] | None = None
    reservation: ReservationRestrictionType | None = None


class TariffElement(OcpiModel):
    """mod_tariffs, TariffElement class."""

    price_components: Annotated[list[PriceComponent], Field(min_length=1)]  # card. +
    restrictions: TariffRestrictions | None = None

    @model_validator(mode="after")
    def _reservation_prices_flat_and_time_only(self) -> TariffElement:
        # TariffRestrictions.reservation: "A reservation can only have: FLAT
        # and TIME TariffDimensions, where TIME is for the duration of the
        # reservation."
        if self.restrictions is not None and self.restrictions.reservation is not None:
            allowed = {TariffDimensionType.FLAT, TariffDimensionType.TIME}
            wrong = sorted({c.type for c in self.price_components} - allowed)
            if wrong:
                raise ValueError(
                    f"a reservation Tariff Element can only price FLAT and TIME, not {wrong}"
                )
        return self


def _not_negative(price: Price | None, what: str) -> None:
    if price is None:
        return
    if price.excl_vat < 0 or (price.incl_vat is not None and price.incl_vat < 0):
        raise ValueError(f"{what} must not be negative")


class Tariff(OcpiModel):
    """mod_tariffs, Tariff Object."""

    country_code: CountryCode  # CiString(2), ISO-3166 alpha-2
    party_id: PartyId  # CiString(3)
    id: TariffId
    currency: Currency
    type: TariffType | None = None
    tariff_alt_text: list[DisplayText] | None = None
    tariff_alt_url: Url | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    # OCPI 2.3.0 (mod_tariffs): what a payment terminal preauthorizes for a
    # session on this tariff (docs/adr/0047). Not a 2.2.1 field; declared so
    # that ours are checked (a non-negative number) and served in 2.3.0.
    preauthorize_amount: NonNegativeNumber | None = None
    elements: Annotated[list[TariffElement], Field(min_length=1)]  # card. +
    start_date_time: DateTime | None = None
    end_date_time: DateTime | None = None
    energy_mix: EnergyMix | None = None
    last_updated: DateTime

    @model_validator(mode="after")
    def _consistent_limits(self) -> Tariff:
        _not_negative(self.min_price, "min_price")
        _not_negative(self.max_price, "max_price")
        # Notes under the Tariff table: min_price and max_price "both apply",
        # excluding and including VAT separately. A minimum above the maximum
        # cannot be honoured, so such a Tariff is refused.
        low, high = self.min_price, self.max_price
        if low is not None and high is not None:
            if low.excl_vat > high.excl_vat:
                raise ValueError("min_price.excl_vat is above max_price.excl_vat")
            if (
                low.incl_vat is not None
                and high.incl_vat is not None
                and low.incl_vat > high.incl_vat
            ):
                raise ValueError("min_price.incl_vat is above max_price.incl_vat")
        # start_date_time: "becomes active"; end_date_time: "no longer valid".
        if (
            self.start_date_time is not None
            and self.end_date_time is not None
            and self.end_date_time <= self.start_date_time
        ):
            raise ValueError("end_date_time must be later than start_date_time")
        return self


def tariff_from_json(data: str | bytes) -> Tariff:
    """Parse a Tariff from JSON text keeping every number exactly as written."""
    return Tariff.model_validate(loads_exact(data))
