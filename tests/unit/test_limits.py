"""What the views can hold (schemas/ocpi/limits.py, docs/adr/0027): the
check every request body passes, and the bounds of the typed fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from schemas.ocpi.limits import (
    INT64_MAX,
    INT64_MIN,
    BeyondLimitsError,
    check_body,
)
from schemas.ocpi.locations import Connector, Location
from schemas.ocpi.tariffs import loads_exact, tariff_from_json
from tests.ocpi_objects import connector, location
from tests.tariff_objects import tariff_json

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SKEW = timedelta(seconds=300)
FORTY_DIGITS = 1234567890123456789012345678901234567890


def _check(data: Any) -> None:
    check_body(data, now=NOW, max_ahead=SKEW)


def _refused(data: Any) -> BeyondLimitsError:
    with pytest.raises(BeyondLimitsError) as caught:
        _check(data)
    return caught.value


def test_64_bit_integers_pass_and_one_more_is_refused() -> None:
    _check({"a": INT64_MAX, "b": INT64_MIN, "c": [0, -1, 1]})
    assert _refused({"a": INT64_MAX + 1}).path == "a"
    assert _refused({"a": INT64_MIN - 1}).path == "a"


def test_a_40_digit_max_voltage_is_named_by_its_path() -> None:
    body = location()
    body["evses"][0]["connectors"][0]["max_voltage"] = FORTY_DIGITS
    err = _refused(body)
    assert err.path == "evses.0.connectors.0.max_voltage"
    assert "64 bits" in err.reason


def test_a_40_digit_integer_decoded_by_orjson_is_refused_too() -> None:
    # orjson turns an integer beyond 64 bits into a float: still refused.
    decoded = orjson.loads(b'{"max_voltage": 1234567890123456789012345678901234567890}')
    assert isinstance(decoded["max_voltage"], float)
    assert _refused(decoded).path == "max_voltage"


def test_unknown_fields_are_checked_as_well() -> None:
    err = _refused({"id": "X", "vendor": {"counts": [1, 2, FORTY_DIGITS]}})
    assert err.path == "vendor.counts.2"


def test_non_finite_and_huge_decimals_are_refused() -> None:
    assert _refused(loads_exact('{"price": 1e400}')).path == "price"
    assert "2^63" in _refused({"x": Decimal("9.3e18")}).reason
    assert _refused({"x": float("inf")}).reason == "must be a finite number"
    assert _refused({"x": float("nan")}).reason == "must be a finite number"
    assert _refused({"x": Decimal("NaN")}).reason == "must be a finite number"
    _check({"x": Decimal("9.2e18"), "y": -1e18, "z": 1e-300})


def test_loads_exact_refuses_nan_and_infinity_literals() -> None:
    with pytest.raises(ValueError, match="NaN"):
        loads_exact('{"price": NaN}')
    with pytest.raises(ValueError, match="Infinity"):
        loads_exact('{"price": -Infinity}')


def test_last_updated_beyond_the_skew_is_refused_wherever_it_is() -> None:
    body = location()
    body["evses"][0]["last_updated"] = "2999-01-01T00:00:00Z"
    err = _refused(body)
    assert err.path == "evses.0.last_updated"
    assert "300 s ahead" in err.reason


def test_last_updated_within_the_skew_and_in_the_past_passes() -> None:
    _check({"last_updated": "2026-12-06T12:05:00Z"})  # exactly the margin
    _check({"last_updated": "1999-01-01T00:00:00Z"})
    assert _refused({"last_updated": "2026-12-06T12:05:00.001Z"}).path == "last_updated"


def test_a_malformed_last_updated_is_left_to_the_model() -> None:
    _check({"last_updated": "tomorrow"})
    _check({"last_updated": 12})


def test_a_large_ordinary_body_is_not_refused() -> None:
    # No false positives: thousands of ordinary numbers and 7-decimal
    # coordinates (strings in OCPI) pass.
    body = location()
    body["coordinates"] = {"latitude": "52.3731890", "longitude": "-4.8925480"}
    evse = body["evses"][0]
    body["evses"] = [
        {**evse, "uid": f"E{i}", "connectors": [connector(str(c)) for c in range(4)]}
        for i in range(500)
    ]
    body["evses"][0]["connectors"][0]["max_electric_power"] = 350_000
    body["energy_mix"] = {
        "is_green_energy": True,
        "energy_sources": [{"source": "SOLAR", "percentage": 12.3456789}],
    }
    _check(body)
    Location.model_validate(body)
    _check(loads_exact(tariff_json()))


def test_deep_nesting_does_not_exhaust_the_stack() -> None:
    deep: Any = 1
    for _ in range(10_000):
        deep = [deep]
    _check({"x": deep})


def test_typed_int_fields_are_32_bit() -> None:
    body = connector("1")
    Connector.model_validate({**body, "max_voltage": 2**31 - 1})
    with pytest.raises(ValidationError) as caught:
        Connector.model_validate({**body, "max_voltage": 2**31})
    assert caught.value.errors()[0]["loc"] == ("max_voltage",)


def test_typed_number_fields_stay_below_10_to_the_14() -> None:
    body = location()
    body["energy_mix"] = {
        "is_green_energy": False,
        "environ_impact": [{"category": "CARBON_DIOXIDE", "amount": 1e14}],
    }
    with pytest.raises(ValidationError) as caught:
        Location.model_validate(body)
    assert caught.value.errors()[0]["loc"][-1] == "amount"


def test_a_tariff_price_of_1e400_or_1e14_is_refused_by_the_model() -> None:
    for price in ("1e400", "1e14", "100000000000000"):
        text = tariff_json(
            elements=f'[{{"price_components": [{{"type": "FLAT", '
            f'"price": {price}, "step_size": 1}}]}}]'
        )
        with pytest.raises(ValidationError):
            tariff_from_json(text)
    tariff_from_json(
        tariff_json(
            elements='[{"price_components": [{"type": "FLAT", '
            '"price": 12345678901234.5, "step_size": 1}]}]'
        )
    )
