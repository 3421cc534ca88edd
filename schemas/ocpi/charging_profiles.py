"""ChargingProfiles module objects (OCPI 2.2.1, mod_charging_profiles.asciidoc).

A Sender (an eMSP or a smart-charging provider) sets, reads or clears the
charging profile of a session at the CPO's Receiver. The CPO answers at once
with a ChargingProfileResponse and POSTs the charger's outcome later to the
request's ``response_url``: a ChargingProfileResult (set), an
ActiveChargingProfileResult (get) or a ClearProfileResult (clear). The CPO
also PUTs the session's ActiveChargingProfile to the Sender when it changes.

Unknown fields are kept (``OcpiModel``); limits and rates are OCPI
``number``s (the spec allows one decimal; we accept more and send what we
were given).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from schemas.ocpi.commands import ResponseUrl
from schemas.ocpi.common import DateTime, OcpiModel
from schemas.ocpi.types import Int, Number


class ProfileAction(StrEnum):
    """What a request asks of the charger: the Receiver's PUT, GET and
    DELETE (our word; OCPI names the three by their result objects)."""

    SET = "SET"
    GET = "GET"
    CLEAR = "CLEAR"


class ChargingRateUnit(StrEnum):
    W = "W"  # total power over all phases
    A = "A"  # current per phase


class ChargingProfilePeriod(OcpiModel):
    start_period: Annotated[Int, Field(ge=0)]  # seconds from the profile's start
    limit: Annotated[Number, Field(ge=0)]


class ChargingProfile(OcpiModel):
    """Limits over time; relative to the start of charging unless
    ``start_date_time`` makes it absolute."""

    start_date_time: DateTime | None = None
    duration: Annotated[Int, Field(ge=0)] | None = None
    charging_rate_unit: ChargingRateUnit
    min_charging_rate: Annotated[Number, Field(ge=0)] | None = None
    charging_profile_period: list[ChargingProfilePeriod] | None = None


class ActiveChargingProfile(OcpiModel):
    """The schedule the charger has planned, as it calculated it at
    ``start_date_time``."""

    start_date_time: DateTime
    charging_profile: ChargingProfile


class SetChargingProfile(OcpiModel):
    """The body of the Receiver's PUT."""

    charging_profile: ChargingProfile
    response_url: ResponseUrl


class ChargingProfileResponseType(StrEnum):
    """The CPO's answer to the request (not the charger's)."""

    ACCEPTED = "ACCEPTED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TOO_OFTEN = "TOO_OFTEN"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class ChargingProfileResultType(StrEnum):
    """The charger's outcome, POSTed to ``response_url``."""

    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"


class ChargingProfileResponse(OcpiModel):
    result: ChargingProfileResponseType
    timeout: Annotated[Int, Field(ge=0)]  # seconds


class ChargingProfileResult(OcpiModel):
    result: ChargingProfileResultType


class ClearProfileResult(OcpiModel):
    result: ChargingProfileResultType


class ActiveChargingProfileResult(OcpiModel):
    result: ChargingProfileResultType
    profile: ActiveChargingProfile | None = None


# One of these is POSTed to a response_url; the request's action says which.
ProfileResult = ChargingProfileResult | ActiveChargingProfileResult | ClearProfileResult
