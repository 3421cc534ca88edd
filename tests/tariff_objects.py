"""Valid OCPI 2.2.1 Tariff objects for tests, as JSON text (so numbers are
tested from their wire form, digit for digit) and as decoded dicts."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from schemas.ocpi.tariffs import (
    PriceComponent,
    TariffDimensionType,
    TariffElement,
    TariffRestrictions,
    loads_exact,
)

AT = "2026-02-01T10:00:00Z"

# Numbers written with trailing zeros and many digits on purpose: what we
# send back must be numerically the same number, not a float approximation.
ELEMENTS = """[
  {"price_components": [{"type": "FLAT", "price": 0.75, "vat": 21.0, "step_size": 1}]},
  {"price_components": [{"type": "ENERGY", "price": 0.3175, "vat": 21.0, "step_size": 1}],
   "restrictions": {"start_time": "07:00", "end_time": "23:00", "max_power": 22.5}},
  {"price_components": [{"type": "ENERGY", "price": 0.123456789012345, "step_size": 100}]},
  {"price_components": [{"type": "PARKING_TIME", "price": 2.40, "vat": 21.0,
                         "step_size": 900}]}
]"""


def tariff_json(
    tariff_id: str = "TAR-1",
    *,
    country_code: str = "NL",
    party_id: str = "ABC",
    at: str = AT,
    elements: str = ELEMENTS,
    extra: str = "",
) -> str:
    """A Tariff as JSON text. ``extra``: more members, e.g. '"type": "REGULAR",'."""
    ids = json.dumps({"country_code": country_code, "party_id": party_id, "id": tariff_id})
    return (
        "{" + ids[1:-1] + ', "currency": "EUR", ' + extra + f' "elements": {elements},'
        f' "min_price": {{"excl_vat": 1.50, "incl_vat": 1.815}},'
        f' "last_updated": "{at}"}}'
    )


def tariff(tariff_id: str = "TAR-1", **kwargs: Any) -> dict[str, Any]:
    """The same Tariff decoded with exact numbers (Decimals)."""
    data: dict[str, Any] = loads_exact(tariff_json(tariff_id, **kwargs))
    return data


def price_component(kind: str, price: str, step: int = 1, vat: str | None = None) -> PriceComponent:
    """A Price Component from text numbers (so every digit is exact)."""
    return PriceComponent(
        type=TariffDimensionType(kind),
        price=Decimal(price),
        vat=None if vat is None else Decimal(vat),
        step_size=step,
    )


def element(*components: PriceComponent, **restrictions: Any) -> TariffElement:
    """A Tariff Element; restrictions by keyword, none when none are given."""
    return TariffElement(
        price_components=list(components),
        restrictions=TariffRestrictions(**restrictions) if restrictions else None,
    )
