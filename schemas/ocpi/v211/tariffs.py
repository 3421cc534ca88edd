"""Tariffs module objects of OCPI 2.1.1 (mod_tariffs.md, tag 2.1.1-d2).

No owner party (the URL names it), no tariff type, no price limits or
validity period; price components without VAT; restrictions without
current or reservation. Numbers are exact, as in our model."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from schemas.ocpi.common import DateTime, OcpiModel
from schemas.ocpi.tariffs import (
    Currency,
    DayOfWeek,
    ExactNumber,
    LocalDate,
    LocalTimeOfDay,
    NonNegativeNumber,
    Seconds,
    TariffDimensionType,
    TariffId,
)
from schemas.ocpi.types import DisplayText, Url
from schemas.ocpi.v211.locations import EnergyMix


class PriceComponent(OcpiModel):
    """2.1.1 PriceComponent class."""

    type: TariffDimensionType
    price: NonNegativeNumber
    step_size: Seconds


class TariffRestrictions(OcpiModel):
    """2.1.1 TariffRestrictions class."""

    start_time: LocalTimeOfDay | None = None
    end_time: LocalTimeOfDay | None = None
    start_date: LocalDate | None = None
    end_date: LocalDate | None = None
    min_kwh: ExactNumber | None = None
    max_kwh: ExactNumber | None = None
    min_power: ExactNumber | None = None
    max_power: ExactNumber | None = None
    min_duration: Seconds | None = None
    max_duration: Seconds | None = None
    day_of_week: list[DayOfWeek] | None = None


class TariffElement(OcpiModel):
    """2.1.1 TariffElement class."""

    price_components: Annotated[list[PriceComponent], Field(min_length=1)]
    restrictions: TariffRestrictions | None = None


class Tariff(OcpiModel):
    """2.1.1 Tariff Object."""

    id: TariffId
    currency: Currency
    tariff_alt_text: list[DisplayText] | None = None
    tariff_alt_url: Url | None = None
    elements: Annotated[list[TariffElement], Field(min_length=1)]
    energy_mix: EnergyMix | None = None
    last_updated: DateTime
