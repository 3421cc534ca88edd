"""Events of the Tariffs slice, on topic ``ocpi.tariffs.v1``.

A Tariff belongs to the party that published it (a partner CPO over OCPI,
or us through the ops API). Both events are keyed by the tariff's aggregate
key, ``COUNTRY_CODE/PARTY_ID/TARIFF_ID`` upper-cased, so every event about
one tariff keeps its order. Which write wins is decided when the events are
folded, by ``last_updated`` (docs/adr/0004, docs/adr/0011).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from schemas.events.envelope import EventMeta
from schemas.ocpi.common import DateTime, fold


def tariff_key(country_code: str, party_id: str, tariff_id: str) -> str:
    """Aggregate key of a tariff: the owning party and the id, folded
    (CiString compares case-insensitively)."""
    return "/".join(fold(part) for part in (country_code, party_id, tariff_id))


class TariffRef(BaseModel):
    """The tariff a write targets; identifiers as received."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    country_code: str
    party_id: str
    tariff_id: str

    @property
    def tariff_key(self) -> str:
        return tariff_key(self.country_code, self.party_id, self.tariff_id)


class TariffPutPayload(TariffRef):
    """``object`` is the complete OCPI Tariff in the JSON form of
    ``schemas.ocpi.tariffs`` (numbers as JSON numbers, each one printing
    exactly the digits that were sent); it passed that model's checks."""

    object: dict[str, Any]
    last_updated: DateTime


class TariffPut(EventMeta):
    """The owner of a tariff published it or replaced it whole (OCPI PUT)."""

    event_type: Literal["TariffPut"] = "TariffPut"
    schema_version: Literal[1] = 1
    payload: TariffPutPayload


class TariffDeletedPayload(TariffRef):
    """``last_updated`` is when the deletion was asked for (an OCPI DELETE
    carries no body, so no ``last_updated`` of the sender's). The deletion
    removes the version held; only a version later than both the deletion
    and the deleted version brings the tariff back (docs/adr/0011)."""

    last_updated: DateTime


class TariffDeleted(EventMeta):
    """The owner of a tariff withdrew it (OCPI DELETE)."""

    event_type: Literal["TariffDeleted"] = "TariffDeleted"
    schema_version: Literal[1] = 1
    payload: TariffDeletedPayload
