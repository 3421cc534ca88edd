"""CDRs module objects (OCPI 2.2.1, mod_cdrs.asciidoc): the part pricing needs.

ChargingPeriod, CdrDimension and CdrDimensionType. Sessions use the same
ChargingPeriod (mod_sessions, Session.charging_periods links here). The CDR
object itself comes later. Volumes are exact Decimals (``tariffs.ExactNumber``).

Definitions of the time dimensions follow the release-2.2.1-bugfixes errata:
PARKING_TIME is time "during which the vehicle is not requesting power" (the
v2.2.1-d2 text said "not charging", which the errata call a mistake).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from schemas.ocpi.common import DateTime, OcpiModel
from schemas.ocpi.tariffs import ExactNumber, TariffId


class CdrDimensionType(StrEnum):
    """mod_cdrs, CdrDimensionType enum, with units. The ones marked "Session
    only" in the spec are CURRENT, ENERGY_EXPORT, ENERGY_IMPORT, POWER and
    STATE_OF_CHARGE."""

    CURRENT = "CURRENT"  # A, average; Session only
    ENERGY = "ENERGY"  # kWh; negative when more went to the grid
    ENERGY_EXPORT = "ENERGY_EXPORT"  # kWh; Session only
    ENERGY_IMPORT = "ENERGY_IMPORT"  # kWh; Session only
    MAX_CURRENT = "MAX_CURRENT"  # A, sum over all phases
    MIN_CURRENT = "MIN_CURRENT"  # A, sum over all phases
    MAX_POWER = "MAX_POWER"  # kW
    MIN_POWER = "MIN_POWER"  # kW
    PARKING_TIME = "PARKING_TIME"  # h
    POWER = "POWER"  # kW, average; Session only
    RESERVATION_TIME = "RESERVATION_TIME"  # h
    STATE_OF_CHARGE = "STATE_OF_CHARGE"  # %, 0 to 100; Session only
    TIME = "TIME"  # h, charging


SESSION_ONLY_DIMENSIONS = frozenset(
    {
        CdrDimensionType.CURRENT,
        CdrDimensionType.ENERGY_EXPORT,
        CdrDimensionType.ENERGY_IMPORT,
        CdrDimensionType.POWER,
        CdrDimensionType.STATE_OF_CHARGE,
    }
)

_DURATIONS = frozenset(
    {CdrDimensionType.TIME, CdrDimensionType.PARKING_TIME, CdrDimensionType.RESERVATION_TIME}
)


class CdrDimension(OcpiModel):
    """mod_cdrs, CdrDimension class."""

    type: CdrDimensionType
    volume: ExactNumber

    @model_validator(mode="after")
    def _volume_in_range(self) -> CdrDimension:
        if self.type in _DURATIONS and self.volume < 0:
            raise ValueError(f"a {self.type} volume is a duration and cannot be negative")
        # CdrDimensionType, STATE_OF_CHARGE: "values allowed: 0 to 100".
        if self.type is CdrDimensionType.STATE_OF_CHARGE and not 0 <= self.volume <= 100:
            raise ValueError("STATE_OF_CHARGE must be between 0 and 100")
        return self


class ChargingPeriod(OcpiModel):
    """mod_cdrs, ChargingPeriod class. "A period ends when the next period
    starts. The last period ends when the session ends." """

    start_date_time: DateTime
    dimensions: Annotated[list[CdrDimension], Field(min_length=1)]  # card. +
    # "If not provided, no Tariff is relevant during this period."
    tariff_id: TariffId | None = None
