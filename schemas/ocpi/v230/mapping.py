"""OCPI 2.3.0 objects to our core (2.2.1-shaped) objects and back
(docs/adr/0046; the per-field table is docs/ocpi-versions.md, "2.3.0").

Our events hold 2.2.1 objects. A 2.3.0 object becomes one without loss:

* Fields 2.3.0 adds (``parking_places``, ``help_phone``, an EVSE's
  ``parking`` and ``accepted_service_providers``, a Connector's
  ``capabilities``, a Tariff's ``tax_included`` and
  ``preauthorize_amount``, a Price's ``taxes``) are kept in the core object
  under their own names, as any unknown field is kept (docs/adr/0039).
* An OpenEnum value 2.2.1 does not list cannot sit in the 2.2.1 field: the
  core field gets a stand-in (``OTHER`` for ImageCategory and TokenType,
  ``TESLA_S`` for SAE_J3400, see ``CONNECTOR_STAND_IN``), is left out (an
  optional single value), or loses the value (a list; an EnergyMix's
  ``environ_impact`` entry). The 2.3.0 value is kept in the object's
  ``ocpi_v230`` field ({field: 2.3.0 value}) and put back on the way out,
  but only while the core field still holds what the stand-in made of it:
  a later 2.2.1 write of that field wins.
* Price: ``excl_vat`` = ``before_taxes``; ``incl_vat`` = ``before_taxes``
  plus every tax when taxes are given (else none); the tax list is kept.
  PriceLimit maps to Price field for field.

Out of the core, 2.3.0 needs what 2.2.1 did not say: ``tax_included`` is
NO for a 2.2.1 tariff (its prices are "excl. VAT"); a Price without a kept
tax list gets one VAT line of ``incl_vat - excl_vat`` (none without
``incl_vat``), with the percentage when the tariffs at hand all use one
VAT rate.

All functions take and return validated models; the work is done on the
JSON form with exact Decimals (``tariffs.exact_numbers``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from enum import StrEnum
from typing import Any

from schemas.ocpi import cdrs as core_cdrs
from schemas.ocpi import locations as core_locations
from schemas.ocpi import sessions as core_sessions
from schemas.ocpi import tariffs as core_tariffs
from schemas.ocpi.tariffs import exact_numbers
from schemas.ocpi.types import TokenType, to_json
from schemas.ocpi.v230 import cdrs as v230_cdrs
from schemas.ocpi.v230 import locations as v230_locations
from schemas.ocpi.v230 import sessions as v230_sessions
from schemas.ocpi.v230 import tariffs as v230_tariffs
from schemas.ocpi.v230.tariffs import TaxIncluded

Json = dict[str, Any]

# The kept field of a core object holding 2.3.0 values of its declared
# fields that 2.2.1 cannot hold.
KEPT = "ocpi_v230"
# The name a Price's tax list is kept under in the core Price.
TAXES = "taxes"
VAT = "VAT"

# A 2.2.1 Connector.standard for a 2.3.0 value 2.2.1 does not list. 2.3.0
# itself calls TESLA_S "mechanically compatible with SAE J3400"; for the
# others 2.2.1 has no honest value, so a DC connector is shown as CCS2 and
# an AC one as Type 2 (the commonest in our markets) to 2.2.1 readers.
CONNECTOR_STAND_IN = {"SAE_J3400": core_locations.ConnectorType.TESLA_S}


def _connector_stand_in(value: str, obj: Json) -> str:
    if value in CONNECTOR_STAND_IN:
        return CONNECTOR_STAND_IN[value].value
    if obj.get("power_type", obj.get("connector_power_type")) == "DC":
        return core_locations.ConnectorType.IEC_62196_T2_COMBO.value
    return core_locations.ConnectorType.IEC_62196_T2.value


StandIn = Callable[[str, Json], str | None]


def _fixed(value: str) -> StandIn:
    return lambda _value, _obj: value


def _none(_value: str, _obj: Json) -> str | None:
    return None


# (field, enum of 2.2.1, stand-in for a single value; None for a list)
_OpenField = tuple[str, type[StrEnum], StandIn | None]

_OPEN_FIELDS: dict[str, tuple[_OpenField, ...]] = {
    "location": (
        ("parking_type", core_locations.ParkingType, _none),
        ("facilities", core_locations.Facility, None),
    ),
    "evse": (
        ("capabilities", core_locations.Capability, None),
        ("parking_restrictions", core_locations.ParkingRestriction, None),
    ),
    "connector": (("standard", core_locations.ConnectorType, _connector_stand_in),),
    "cdr_location": (("connector_standard", core_locations.ConnectorType, _connector_stand_in),),
    "image": (("category", core_locations.ImageCategory, _fixed("OTHER")),),
    "token": (("type", TokenType, _fixed("OTHER")),),
}


def _listed(enum: type[StrEnum], value: Any) -> bool:
    return value in enum._value2member_map_


def _core_value(spec: _OpenField, value: Any, obj: Json) -> Any:
    """What the core field holds for the 2.3.0 ``value`` (absent: None)."""
    _, enum, stand_in = spec
    if stand_in is None:  # a list: the values 2.2.1 lists
        return [v for v in value if _listed(enum, v)]
    return value if _listed(enum, value) else stand_in(value, obj)


def _open_in(obj: Json, kind: str) -> None:
    """2.3.0 -> core for the OpenEnum fields of one object (in place)."""
    kept: Json = {}
    for spec in _OPEN_FIELDS[kind]:
        name = spec[0]
        if name not in obj:
            continue
        core = _core_value(spec, obj[name], obj)
        if core != obj[name]:
            kept[name] = obj[name]
            if core is None:
                del obj[name]
            else:
                obj[name] = core
    if kept:
        obj[KEPT] = kept


def _open_out(obj: Json, kind: str) -> None:
    """core -> 2.3.0: put kept values back while the core still holds what
    they made (a later 2.2.1 write of the field wins)."""
    kept = obj.pop(KEPT, None)
    if not isinstance(kept, dict):
        return
    for spec in _OPEN_FIELDS[kind]:
        name = spec[0]
        if name in kept and obj.get(name) == _core_value(spec, kept[name], obj):
            obj[name] = kept[name]


def _each(obj: Json, name: str) -> Iterable[Json]:
    value = obj.get(name)
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return [value] if isinstance(value, dict) else []


# --------------------------------------------------------------------------
# Nested classes, both ways (``inward``: 2.3.0 -> core)
# --------------------------------------------------------------------------


def _image(obj: Json, inward: bool) -> None:
    (_open_in if inward else _open_out)(obj, "image")


def _business(obj: Json, inward: bool) -> None:
    for logo in _each(obj, "logo"):
        _image(logo, inward)


def _energy_mix(obj: Json, inward: bool) -> None:
    if inward:
        impacts = obj.get("environ_impact")
        if impacts is None:
            return
        listed = [
            i for i in impacts if _listed(core_locations.EnvironmentalImpactCategory, i["category"])
        ]
        if len(listed) != len(impacts):
            obj[KEPT] = {"environ_impact": impacts}
            obj["environ_impact"] = listed
        return
    kept = obj.pop(KEPT, None)
    if isinstance(kept, dict) and "environ_impact" in kept:
        impacts = kept["environ_impact"]
        listed = [
            i for i in impacts if _listed(core_locations.EnvironmentalImpactCategory, i["category"])
        ]
        if obj.get("environ_impact") == listed:
            obj["environ_impact"] = impacts


def connector_json(obj: Json, inward: bool) -> None:
    """One Connector (or a PATCH fragment of one), JSON, in place."""
    (_open_in if inward else _open_out)(obj, "connector")


def evse_json(obj: Json, inward: bool) -> None:
    """One EVSE with its connectors (or a PATCH fragment), JSON, in place."""
    (_open_in if inward else _open_out)(obj, "evse")
    for connector in _each(obj, "connectors"):
        connector_json(connector, inward)
    for image in _each(obj, "images"):
        _image(image, inward)


def _location_tree(obj: Json, inward: bool) -> None:
    step = _open_in if inward else _open_out
    step(obj, "location")
    for token in _each(obj, "publish_allowed_to"):
        step(token, "token")
    for evse in _each(obj, "evses"):
        evse_json(evse, inward)
    for name in ("operator", "suboperator", "owner"):
        for business in _each(obj, name):
            _business(business, inward)
    for image in _each(obj, "images"):
        _image(image, inward)
    for mix in _each(obj, "energy_mix"):
        _energy_mix(mix, inward)


# --------------------------------------------------------------------------
# Prices
# --------------------------------------------------------------------------


def _price_in(obj: Json) -> Json:
    """A 2.3.0 Price (JSON, exact) as a core Price."""
    rest = {k: v for k, v in obj.items() if k not in ("before_taxes", TAXES)}
    before = Decimal(obj["before_taxes"])
    core: Json = {"excl_vat": obj["before_taxes"]}
    taxes = obj.get(TAXES)
    if taxes is not None:
        core["incl_vat"] = before + sum((Decimal(t["amount"]) for t in taxes), Decimal(0))
        core[TAXES] = taxes
    return {**core, **rest}


def _price_out(obj: Json, vat_rate: Decimal | None) -> Json:
    """A core Price (JSON, exact) as a 2.3.0 Price."""
    rest = {k: v for k, v in obj.items() if k not in ("excl_vat", "incl_vat", TAXES)}
    excl = Decimal(obj["excl_vat"])
    incl = obj.get("incl_vat")
    out: Json = {"before_taxes": obj["excl_vat"]}
    kept = obj.get(TAXES)
    if isinstance(kept, list) and incl is not None:
        total = excl + sum((Decimal(t["amount"]) for t in kept), Decimal(0))
        if total == Decimal(incl):  # still the price the taxes were kept with
            out[TAXES] = kept
            return {**out, **rest}
    if incl is not None:
        tax: Json = {"name": VAT, "amount": Decimal(incl) - excl}
        if vat_rate is not None:
            tax["percentage"] = vat_rate
        out[TAXES] = [tax]
    return {**out, **rest}


def price_out(obj: Json, vat_rate: Decimal | None) -> Json:
    """A core Price (JSON, exact) as the 2.3.0 Price we send: its kept tax
    list while it still adds up, else one derived VAT line."""
    return _price_out(obj, vat_rate)


def _limit_in(obj: Json) -> Json:
    rest = {k: v for k, v in obj.items() if k not in ("before_taxes", "after_taxes")}
    core = {"excl_vat": obj["before_taxes"]}
    if "after_taxes" in obj:
        core["incl_vat"] = obj["after_taxes"]
    return {**core, **rest}


def _limit_out(obj: Json) -> Json:
    rest = {k: v for k, v in obj.items() if k not in ("excl_vat", "incl_vat")}
    out = {"before_taxes": obj["excl_vat"]}
    if "incl_vat" in obj:
        out["after_taxes"] = obj["incl_vat"]
    return {**out, **rest}


def single_vat_rate(tariffs: Iterable[core_tariffs.Tariff]) -> Decimal | None:
    """The one VAT rate every price component of ``tariffs`` states, or
    None (no tariff, a component without VAT, or several rates)."""
    rates: set[Decimal] = set()
    for tariff in tariffs:
        for element in tariff.elements:
            for component in element.price_components:
                if component.vat is None:
                    return None
                rates.add(component.vat)
    return rates.pop() if len(rates) == 1 else None


# --------------------------------------------------------------------------
# Objects
# --------------------------------------------------------------------------


def _json(model: Any) -> Json:
    data: Json = exact_numbers(to_json(model))
    return data


def location_to_core(location: v230_locations.Location) -> core_locations.Location:
    data = _json(location)
    _location_tree(data, inward=True)
    return core_locations.Location.model_validate(data)


def location_from_core(location: core_locations.Location) -> v230_locations.Location:
    data = _json(location)
    _location_tree(data, inward=False)
    return v230_locations.Location.model_validate(data)


def _tariff_in(data: Json) -> None:
    for name in ("min_price", "max_price"):
        if name in data:
            data[name] = _limit_in(data[name])
    for mix in _each(data, "energy_mix"):
        _energy_mix(mix, inward=True)


def _tariff_out(data: Json) -> None:
    for name in ("min_price", "max_price"):
        if name in data:
            data[name] = _limit_out(data[name])
    # 2.2.1: PriceComponent.price is "excl. VAT".
    data.setdefault("tax_included", TaxIncluded.NO.value)
    for mix in _each(data, "energy_mix"):
        _energy_mix(mix, inward=False)


# JSON-level conversions of whole objects and PATCH fragments, in place
# (exact numbers: ``tariffs.exact_numbers``), for the wire adapter
# (schemas/ocpi/v230/adapter.py), which validates before it converts.
location_json = _location_tree
business_json = _business


def tariff_json(obj: Json, inward: bool) -> None:
    """One Tariff, JSON, in place."""
    (_tariff_in if inward else _tariff_out)(obj)


def token_json(obj: Json, inward: bool) -> None:
    """One Token (or a PATCH fragment of one), JSON, in place: TokenType is
    an OpenEnum in 2.3.0 (``EMAID``, or a value of the implementer's)."""
    (_open_in if inward else _open_out)(obj, "token")


def with_token_json(obj: Json, inward: bool) -> None:
    """An object that carries a Token (StartSession, ReserveNow,
    AuthorizationInfo), JSON, in place: its Token as ``token_json``. The
    rest of these objects is 2.2.1's in 2.3.0 (mod_commands, mod_tokens)."""
    token = obj.get("token")
    if isinstance(token, dict):
        token_json(token, inward)


def tariff_to_core(tariff: v230_tariffs.Tariff) -> core_tariffs.Tariff:
    data = _json(tariff)
    _tariff_in(data)
    return core_tariffs.Tariff.model_validate(data)


def tariff_from_core(tariff: core_tariffs.Tariff) -> v230_tariffs.Tariff:
    data = _json(tariff)
    _tariff_out(data)
    return v230_tariffs.Tariff.model_validate(data)


def tax_included_of(tariff: core_tariffs.Tariff) -> TaxIncluded:
    """How a core Tariff's prices are to be read: as its kept 2.3.0
    ``tax_included`` says, else as 2.2.1 reads them (before taxes: NO)."""
    value = (tariff.model_extra or {}).get("tax_included")
    try:
        return TaxIncluded(value) if value is not None else TaxIncluded.NO
    except ValueError:
        # Only a 2.2.1 partner's custom field of that name can hold another value.
        return TaxIncluded.NO


_SESSION_PRICES = ("total_cost",)
_CDR_PRICES = (
    "total_cost",
    "total_fixed_cost",
    "total_energy_cost",
    "total_time_cost",
    "total_parking_cost",
    "total_reservation_cost",
)


def _token(data: Json, inward: bool) -> None:
    for token in _each(data, "cdr_token"):
        (_open_in if inward else _open_out)(token, "token")


def session_json(data: Json, inward: bool, vat_rate: Decimal | None = None) -> None:
    """One Session (or a PATCH fragment), JSON with exact numbers, in place.
    ``vat_rate``: the one VAT rate of its tariffs, for a derived tax line."""
    _token(data, inward)
    for name in _SESSION_PRICES:
        if isinstance(data.get(name), dict):
            data[name] = _price_in(data[name]) if inward else _price_out(data[name], vat_rate)


def cdr_json(data: Json, inward: bool) -> None:
    """One CDR, JSON with exact numbers, in place. Out, the VAT percentage
    of a derived tax line comes from the CDR's own tariffs when they state
    one rate (read before they are given their 2.3.0 shape)."""
    rate = None
    if not inward:
        tariffs = [core_tariffs.Tariff.model_validate(t) for t in _each(data, "tariffs")]
        rate = single_vat_rate(tariffs)
    _token(data, inward)
    for location in _each(data, "cdr_location"):
        (_open_in if inward else _open_out)(location, "cdr_location")
    for tariff in _each(data, "tariffs"):
        (_tariff_in if inward else _tariff_out)(tariff)
    for name in _CDR_PRICES:
        if isinstance(data.get(name), dict):
            data[name] = _price_in(data[name]) if inward else _price_out(data[name], rate)


def session_to_core(session: v230_sessions.Session) -> core_sessions.Session:
    data = _json(session)
    session_json(data, inward=True)
    return core_sessions.Session.model_validate(data)


def session_from_core(
    session: core_sessions.Session, tariffs: Iterable[core_tariffs.Tariff] = ()
) -> v230_sessions.Session:
    """``tariffs``: those the session is priced by, for the VAT percentage."""
    data = _json(session)
    session_json(data, inward=False, vat_rate=single_vat_rate(tariffs))
    return v230_sessions.Session.model_validate(data)


def cdr_to_core(cdr: v230_cdrs.Cdr) -> core_cdrs.Cdr:
    data = _json(cdr)
    cdr_json(data, inward=True)
    return core_cdrs.Cdr.model_validate(data)


def cdr_from_core(cdr: core_cdrs.Cdr) -> v230_cdrs.Cdr:
    data = _json(cdr)
    cdr_json(data, inward=False)
    return v230_cdrs.Cdr.model_validate(data)
