"""Read-only lookup of the ``charge_points`` view (written by the charge
point registry's projection) for the Commands receiver: which charge points
serve a location. The document shape is the registry's (see
producers/commands.py, ``ChargePointEntry``); this module only reads it."""

from __future__ import annotations

from typing import Any

from pymongo.database import Database

from schemas.events.locations import location_key

Doc = dict[str, Any]
COLLECTION = "charge_points"


class ChargePointLookup:
    def __init__(self, db: Database[Doc]) -> None:
        self._coll = db[COLLECTION]

    def at_location(self, country_code: str, party_id: str, location_id: str) -> list[Doc]:
        key = location_key(country_code, party_id, location_id)
        return list(self._coll.find({"location_key": key}, {"password_hash": 0}))
