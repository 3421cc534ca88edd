"""The Tariffs object model (mod_tariffs), Price (types.asciidoc) and the
ChargingPeriod (mod_cdrs) that pricing reads."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.ocpi.cdrs import CdrDimension, CdrDimensionType, ChargingPeriod
from schemas.ocpi.tariffs import (
    DayOfWeek,
    Price,
    PriceComponent,
    ReservationRestrictionType,
    Tariff,
    TariffDimensionType,
    TariffElement,
    TariffRestrictions,
    TariffType,
    loads_exact,
    tariff_from_json,
)
from schemas.ocpi.types import to_json

# Test vectors: our own tariffs (ids, texts, dates and figures are ours),
# covering every shape the Tariff object can take: a single component, alt
# texts and a URL, a many-element tariff with every restriction kind,
# min/max prices, reservations with and without an expiry element. Each is
# JSON text, so parsing is tested from the wire form; ``_wire`` writes it
# with non-integral numbers exactly as given (Decimal -> JSON number).


def _num(value: str) -> Decimal:
    return Decimal(value)


def _component(kind: str, price: str, step: int, vat: str | None = "19.0") -> dict[str, Any]:
    component: dict[str, Any] = {"type": kind, "price": _num(price)}
    if vat is not None:
        component["vat"] = _num(vat)
    component["step_size"] = step
    return component


def _element(*components: dict[str, Any], **restrictions: Any) -> dict[str, Any]:
    element: dict[str, Any] = {"price_components": list(components)}
    if restrictions:
        element["restrictions"] = restrictions
    return element


def _tariff(tariff_id: str, *elements: dict[str, Any], **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"country_code": "FR", "party_id": "VLT", "id": tariff_id}
    data["currency"] = fields.pop("currency", "EUR")
    data.update(fields)
    data["elements"] = list(elements)
    data.setdefault("last_updated", "2024-03-11T08:15:00Z")
    return data


def _wire(data: dict[str, Any]) -> str:
    """JSON text with every Decimal written digit for digit."""

    def encode(value: Any) -> str:
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, dict):
            return "{" + ", ".join(f"{json.dumps(k)}: {encode(v)}" for k, v in value.items()) + "}"
        if isinstance(value, list):
            return "[" + ", ".join(encode(v) for v in value) + "]"
        return json.dumps(value)

    return encode(data)


_WEEKDAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]

VECTORS: dict[str, str] = {
    name: _wire(data)
    for name, data in {
        "hourly": _tariff("T-HOUR", _element(_component("TIME", "1.80", 60, "20.0"))),
        "alt_text": _tariff(
            "T-TEXT",
            _element(_component("TIME", "2.10", 300, "7.7")),
            type="AD_HOC_PAYMENT",
            tariff_alt_text=[
                {"language": "en", "text": "Pay 2.26 per hour, tax included."},
                {"language": "fr", "text": "2,26 par heure, taxes comprises."},
            ],
        ),
        "alt_url": _tariff(
            "T-URL",
            _element(_component("TIME", "2.10", 300, "7.7")),
            type="PROFILE_CHEAP",
            tariff_alt_url="https://tariffs.example.org/t-url",
        ),
        "many_elements": _tariff(
            "T-MANY",
            _element(_component("FLAT", "1.00", 0)),
            _element(
                _component("TIME", "1.20", 900),
                min_current=_num("16.00"),
                max_current=_num("32.00"),
            ),
            _element(
                _component("TIME", "2.40", 600),
                start_time="08:00",
                end_time="20:00",
                min_current=_num("32.00"),
                day_of_week=_WEEKDAYS,
            ),
            _element(
                _component("TIME", "2.60", 600),
                min_current=_num("32.00"),
                day_of_week=["SATURDAY", "SUNDAY"],
            ),
            _element(
                _component("PARKING_TIME", "4.50", 300),
                start_time="08:00",
                end_time="20:00",
                day_of_week=_WEEKDAYS,
            ),
            _element(
                _component("ENERGY", "0.30", 1),
                start_date="2024-12-24",
                end_date="2024-12-27",
                min_kwh=_num("5"),
                max_kwh=_num("60.5"),
                min_power=_num("11"),
                max_power=_num("150.25"),
                min_duration=600,
                max_duration=7200,
            ),
            type="REGULAR",
            tariff_alt_text=[{"language": "en", "text": "Several prices, see the app."}],
            start_date_time="2024-01-01T00:00:00Z",
            end_date_time="2025-01-01T00:00:00Z",
        ),
        "free": _tariff("T-FREE", _element(_component("FLAT", "0", 0, None)), type="REGULAR"),
        "kwh_fee_max": _tariff(
            "T-KWH-FEE-MAX",
            _element(_component("FLAT", "0.80", 0, "21.0"), _component("ENERGY", "0.35", 1)),
            max_price={"excl_vat": _num("15.00"), "incl_vat": _num("17.85")},
        ),
        "kwh": _tariff("T-KWH", _element(_component("ENERGY", "0.35", 1, "21.0"))),
        "kwh_fee": _tariff(
            "T-KWH-FEE",
            _element(_component("FLAT", "0.80", 0, "21.0")),
            _element(_component("ENERGY", "0.35", 1, "21.0")),
        ),
        "kwh_fee_parking": _tariff(
            "T-KWH-FEE-PARK",
            _element(_component("FLAT", "0.80", 0, "21.0")),
            _element(_component("ENERGY", "0.35", 1, "21.0")),
            _element(_component("PARKING_TIME", "3.00", 600, "21.0")),
        ),
        "kwh_min": _tariff(
            "T-KWH-MIN",
            _element(_component("ENERGY", "0.25", 1, "10.0")),
            min_price={"excl_vat": _num("0.50"), "incl_vat": _num("0.55")},
        ),
        "time_then_parking": _tariff(
            "T-TIME-PARK",
            _element(_component("TIME", "3.50", 60, None)),
            _element(_component("PARKING_TIME", "6.00", 60, None)),
            currency="CHF",
        ),
        "power_bands": _tariff(
            "T-POWER",
            _element(_component("ENERGY", "0.29", 1), max_power=_num("22.00")),
            _element(_component("ENERGY", "0.49", 1), max_power=_num("50.00")),
            _element(_component("ENERGY", "0.69", 1)),
        ),
        "duration_bands": _tariff(
            "T-DURATION",
            _element(_component("ENERGY", "0.29", 1), max_duration=1800),
            _element(_component("ENERGY", "0.39", 1)),
        ),
        "reservation_hourly": _tariff(
            "T-RES",
            _element(_component("TIME", "4.00", 60), reservation="RESERVATION"),
            _element(_component("ENERGY", "0.31", 1)),
        ),
        "reservation_fee_hourly": _tariff(
            "T-RES-FEE",
            _element(
                _component("FLAT", "1.50", 1),
                _component("TIME", "4.00", 60),
                reservation="RESERVATION",
            ),
            _element(_component("ENERGY", "0.31", 1)),
        ),
        "reservation_expiry_fee": _tariff(
            "T-RES-EXP",
            _element(_component("FLAT", "3.00", 1), reservation="RESERVATION_EXPIRES"),
            _element(
                _component("FLAT", "1.50", 1),
                _component("TIME", "4.00", 60),
                reservation="RESERVATION",
            ),
            _element(_component("ENERGY", "0.31", 1)),
        ),
        "reservation_expiry_time": _tariff(
            "T-RES-EXP-TIME",
            _element(_component("TIME", "8.00", 60), reservation="RESERVATION_EXPIRES"),
            _element(_component("TIME", "4.00", 60), reservation="RESERVATION"),
            _element(_component("ENERGY", "0.31", 1)),
        ),
    }.items()
}

# A receiver PUT body as a sender might write it, without ``last_updated``.
PUT_WITHOUT_LAST_UPDATED = _wire(
    {
        k: v
        for k, v in _tariff("T-PUT", _element(_component("TIME", "2.50", 300))).items()
        if k != "last_updated"
    }
)


def vector(name: str) -> Tariff:
    return tariff_from_json(VECTORS[name])


def vector_dict(name: str) -> dict[str, Any]:
    data: dict[str, Any] = loads_exact(VECTORS[name])
    return data


# --------------------------------------------------------------------------
# Our vectors parse
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_vector_parses_and_round_trips(name: str) -> None:
    tariff = vector(name)
    # What we write is what was sent: same keys, numerically equal numbers.
    assert loads_exact(json.dumps(to_json(tariff))) == vector_dict(name)


def test_put_example_is_refused_for_want_of_last_updated() -> None:
    with pytest.raises(ValidationError, match="last_updated"):
        tariff_from_json(PUT_WITHOUT_LAST_UPDATED)
    data = loads_exact(PUT_WITHOUT_LAST_UPDATED) | {"last_updated": "2019-01-01T00:00:00Z"}
    assert Tariff.model_validate(data).elements[0].price_components[0].step_size == 300


def test_complex_example_is_typed_all_the_way_down() -> None:
    tariff = vector("many_elements")
    assert tariff.type is TariffType.REGULAR
    weekend = tariff.elements[3].restrictions
    assert weekend is not None
    assert weekend.min_current == Decimal("32.00")
    assert weekend.day_of_week == [DayOfWeek.SATURDAY, DayOfWeek.SUNDAY]
    parking = tariff.elements[4]
    assert parking.price_components[0].type is TariffDimensionType.PARKING_TIME
    assert parking.restrictions == TariffRestrictions(
        start_time="08:00",
        end_time="20:00",
        day_of_week=[
            DayOfWeek.MONDAY,
            DayOfWeek.TUESDAY,
            DayOfWeek.WEDNESDAY,
            DayOfWeek.THURSDAY,
            DayOfWeek.FRIDAY,
        ],
    )


def test_reservation_vectors_carry_the_restriction() -> None:
    tariff = vector("reservation_expiry_fee")
    kinds = [e.restrictions.reservation if e.restrictions else None for e in tariff.elements]
    assert kinds == [
        ReservationRestrictionType.RESERVATION_EXPIRES,
        ReservationRestrictionType.RESERVATION,
        None,
    ]


# --------------------------------------------------------------------------
# Numbers are exact Decimals
# --------------------------------------------------------------------------


def test_numbers_keep_every_digit_sent() -> None:
    text = VECTORS["kwh_min"].replace('"price": 0.25', '"price": 0.123456789012345678901234567890')
    tariff = tariff_from_json(text)
    component = tariff.elements[0].price_components[0]
    assert component.price == Decimal("0.123456789012345678901234567890")
    assert isinstance(component.price, Decimal)
    assert tariff.min_price == Price(excl_vat=Decimal("0.50"), incl_vat=Decimal("0.55"))
    assert isinstance(tariff.min_price.excl_vat, Decimal)


def test_numbers_are_written_as_json_numbers() -> None:
    component = PriceComponent(
        type=TariffDimensionType.ENERGY, price=Decimal("0.2500"), vat=Decimal("20"), step_size=1
    )
    assert component.model_dump_json() == '{"type":"ENERGY","price":0.25,"vat":20,"step_size":1}'
    assert component.model_dump()["price"] == Decimal("0.2500")  # Python mode stays Decimal


def test_a_number_that_cannot_be_printed_exactly_is_not_written() -> None:
    price = Price(excl_vat=Decimal("0.123456789012345678901234567890"))
    with pytest.raises(ValueError, match="cannot be written"):
        price.model_dump_json()


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        (Decimal("0.25"), Decimal("0.25")),
        (2, Decimal(2)),
        (0.25, Decimal("0.25")),  # a float with few digits is certainly 0.25
        (0.30000000000000004, None),  # 17 digits: not something a partner wrote
        ("0.25", None),  # a JSON string, not a number
        (True, None),
        (Decimal("NaN"), None),
        (float("inf"), None),
    ],
)
def test_price_number_parsing(value: Any, accepted: Decimal | None) -> None:
    if accepted is None:
        with pytest.raises(ValidationError):
            Price.model_validate({"excl_vat": value})
    else:
        assert Price.model_validate({"excl_vat": value}).excl_vat == accepted


def test_pydantic_json_mode_is_exact_for_ordinary_numbers() -> None:
    tariff = Tariff.model_validate_json(VECTORS["kwh_fee"])
    assert tariff == vector("kwh_fee")


# --------------------------------------------------------------------------
# Bad values are refused
# --------------------------------------------------------------------------


def _set(data: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


_DELETE = object()
_COMPONENT = ("elements", 0, "price_components", 0)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("id",), "x" * 37),  # CiString(36)
        (("id",), ""),
        (("country_code",), "DEU"),
        (("party_id",), "AL"),
        (("currency",), "eur"),  # ISO 4217 codes are upper case
        (("currency",), "EURO"),
        (("currency",), "E1"),
        (("type",), "CHEAP"),
        (("elements",), []),  # card. +
        (("elements", 0, "price_components"), []),  # card. +
        ((*_COMPONENT, "type"), "RESERVATION_TIME"),  # a CdrDimensionType, not a tariff one
        ((*_COMPONENT, "price"), "0.25"),
        ((*_COMPONENT, "price"), -1),
        ((*_COMPONENT, "vat"), -1),
        ((*_COMPONENT, "vat"), 120),
        ((*_COMPONENT, "step_size"), 1.5),  # int
        ((*_COMPONENT, "step_size"), "60"),
        ((*_COMPONENT, "step_size"), -60),
        ((*_COMPONENT, "step_size"), _DELETE),  # card. 1
        (("tariff_alt_url",), "not a url"),
        (("last_updated",), "2024-05-02T07:12:30+02:00"),  # DateTime is UTC
        (("min_price",), {"excl_vat": -1}),
        (("min_price",), {"incl_vat": 1}),  # excl_vat is required
        (("end_date_time",), "2024-02-29T20:39:09Z"),  # before start_date_time
    ],
)
def test_bad_tariff_values_are_refused(path: tuple[str | int, ...], value: Any) -> None:
    data = vector_dict("hourly") | {"start_date_time": "2024-03-01T00:00:00Z"}
    with pytest.raises(ValidationError):
        Tariff.model_validate(_set(data, path, value))


@pytest.mark.parametrize(
    "restrictions",
    [
        {"start_time": "7:00"},  # leading zero
        {"start_time": "24:00"},
        {"end_time": "12:60"},
        {"end_time": "12:00:00"},
        {"start_date": "2024-13-01"},
        {"start_date": "2023-02-30"},  # matches the spec's regex, is no date
        {"end_date": "15-12-24"},
        {"end_date": "2024-12-24T00:00"},
        {"min_kwh": "20"},
        {"max_power": True},
        {"min_duration": 1.5},
        {"max_duration": -1},
        {"day_of_week": ["MON"]},
        {"day_of_week": "MONDAY"},
        {"reservation": "EXPIRED"},
    ],
)
def test_bad_restrictions_are_refused(restrictions: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TariffRestrictions.model_validate(restrictions)


def test_restrictions_accept_every_field_of_the_spec() -> None:
    restrictions = TariffRestrictions.model_validate(
        loads_exact(
            """{"start_time": "13:30", "end_time": "00:00", "start_date": "2024-12-24",
            "end_date": "2024-12-27", "min_kwh": 20, "max_kwh": 50.5, "min_current": 5,
            "max_current": 20, "min_power": 5, "max_power": 20.25, "min_duration": 1800,
            "max_duration": 3600, "day_of_week": ["MONDAY", "SUNDAY"],
            "reservation": "RESERVATION_EXPIRES"}"""
        )
    )
    assert restrictions.max_kwh == Decimal("50.5")
    assert restrictions.max_power == Decimal("20.25")


def test_reservation_element_prices_only_flat_and_time() -> None:
    ok = {
        "price_components": [
            {"type": "FLAT", "price": 2, "step_size": 1},
            {"type": "TIME", "price": 5, "step_size": 300},
        ],
        "restrictions": {"reservation": "RESERVATION"},
    }
    TariffElement.model_validate(ok)
    bad = _set(ok, ("price_components", 1, "type"), "ENERGY")
    with pytest.raises(ValidationError, match="reservation"):
        TariffElement.model_validate(bad)


def test_min_price_above_max_price_is_refused() -> None:
    data = vector_dict("kwh_fee_max")
    data["min_price"] = {"excl_vat": 16, "incl_vat": 17}
    with pytest.raises(ValidationError, match="min_price"):
        Tariff.model_validate(data)
    data["min_price"] = {"excl_vat": 1, "incl_vat": 18}
    with pytest.raises(ValidationError, match="incl_vat"):
        Tariff.model_validate(data)


def test_tariff_is_frozen() -> None:
    tariff = vector("hourly")
    with pytest.raises(ValidationError):
        tariff.currency = "USD"  # type: ignore[misc]  # the point of the test


# --------------------------------------------------------------------------
# ChargingPeriod
# --------------------------------------------------------------------------


def test_charging_period_parses() -> None:
    period = ChargingPeriod.model_validate(
        loads_exact(
            """{"start_date_time": "2024-03-11T09:41:07Z",
            "dimensions": [{"type": "TIME", "volume": 1.642}], "tariff_id": "T-HOUR"}"""
        )
    )
    assert period.dimensions == [CdrDimension(type=CdrDimensionType.TIME, volume=Decimal("1.642"))]


@pytest.mark.parametrize(
    "period",
    [
        {"start_date_time": "2024-05-02T07:12:30Z", "dimensions": []},  # card. +
        {"start_date_time": "2024-05-02T07:12:30Z", "dimensions": [{"type": "KWH", "volume": 1}]},
        {"start_date_time": "2024-05-02T07:12:30Z", "dimensions": [{"type": "TIME"}]},
        {"start_date_time": "2024-05-02T07:12:30Z", "dimensions": [{"type": "TIME", "volume": -1}]},
        {
            "start_date_time": "2024-05-02T07:12:30Z",
            "dimensions": [{"type": "STATE_OF_CHARGE", "volume": 101}],
        },
        {"start_date_time": "2024-05-02", "dimensions": [{"type": "TIME", "volume": 1}]},
        {
            "start_date_time": "2024-05-02T07:12:30Z",
            "dimensions": [{"type": "TIME", "volume": 1}],
            "tariff_id": "x" * 37,
        },
    ],
)
def test_bad_charging_periods_are_refused(period: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ChargingPeriod.model_validate(period)


def test_energy_may_be_negative() -> None:
    # CdrDimensionType ENERGY may be negative: net energy fed back into the grid.
    assert CdrDimension(type=CdrDimensionType.ENERGY, volume=Decimal("-1.5")).volume < 0
