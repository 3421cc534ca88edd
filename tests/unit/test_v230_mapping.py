"""2.3.0 objects through our core (schemas/ocpi/v230/mapping.py).

Properties (hypothesis): a 2.3.0 object -> core -> 2.3.0 comes back equal,
field for field; a 2.2.1 object -> core -> 2.3.0 -> core keeps every field
2.2.1 has. Then the particular rules: stand-ins, derived taxes, a later
2.2.1 write winning over a kept 2.3.0 value."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.ocpi import cdrs as core_cdrs
from schemas.ocpi import locations as core_locations
from schemas.ocpi import sessions as core_sessions
from schemas.ocpi import tariffs as core_tariffs
from schemas.ocpi.tariffs import exact_numbers
from schemas.ocpi.types import TokenType, to_json
from schemas.ocpi.v230 import cdrs as v230_cdrs
from schemas.ocpi.v230 import locations as v230_locations
from schemas.ocpi.v230 import mapping
from schemas.ocpi.v230 import sessions as v230_sessions
from schemas.ocpi.v230 import tariffs as v230_tariffs
from schemas.ocpi.v230.locations import ConnectorCapability, VehicleType

D = Decimal
Json = dict[str, Any]
STAMPS = st.sampled_from(["2025-03-01T10:00:00Z", "2025-03-02T11:30:00.250Z"])
IDS = st.text(alphabet="ABCdef0123-", min_size=1, max_size=8)
UNLISTED = ["MCS", "SAE_J3400", "EMPLOYEES", "TAXIS", "X_PRIVATE_VALUE", "CAR_KEY", "SATELLITE"]


def open_enum(enum: type[Any], v230: bool) -> st.SearchStrategy[str]:
    listed = st.sampled_from([e.value for e in enum])
    return st.one_of(listed, st.sampled_from(UNLISTED)) if v230 else listed


def money(low: int = 0) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=low, max_value=10_000, places=4, allow_nan=False)


def unique_by(key: str) -> Any:
    return lambda item: item[key].upper()


def image(v230: bool) -> st.SearchStrategy[Json]:
    return st.fixed_dictionaries(
        {
            "url": st.just("https://img.example.com/a.png"),
            "category": open_enum(core_locations.ImageCategory, v230),
            "type": st.sampled_from(["png", "jpeg"]),
        },
        optional={"width": st.integers(0, 99999)},
    )


def connector(v230: bool) -> st.SearchStrategy[Json]:
    optional: dict[str, Any] = {
        "max_electric_power": st.integers(0, 350_000),
        "tariff_ids": st.lists(IDS, max_size=2),
    }
    if v230:
        optional["capabilities"] = st.lists(
            open_enum(ConnectorCapability, v230), min_size=0, max_size=2
        )
    return st.fixed_dictionaries(
        {
            "id": IDS,
            "standard": open_enum(core_locations.ConnectorType, v230),
            "format": st.sampled_from(["SOCKET", "CABLE"]),
            "power_type": st.sampled_from(["AC_3_PHASE", "DC"]),
            "max_voltage": st.integers(0, 1000),
            "max_amperage": st.integers(0, 500),
            "last_updated": STAMPS,
        },
        optional=optional,
    )


def evse(v230: bool, parking_ids: list[str]) -> st.SearchStrategy[Json]:
    optional: dict[str, Any] = {
        "evse_id": st.just("NL*V23*E1"),
        "capabilities": st.lists(open_enum(core_locations.Capability, v230), max_size=3),
        "parking_restrictions": st.lists(
            open_enum(core_locations.ParkingRestriction, v230), max_size=2
        ),
        "images": st.lists(image(v230), max_size=1),
    }
    if v230:
        optional["accepted_service_providers"] = st.lists(
            st.text(alphabet="abc XYZ", max_size=50), max_size=2
        )
        if parking_ids:
            link = st.one_of(
                st.sampled_from(parking_ids),
                st.fixed_dictionaries(
                    {"parking_id": st.sampled_from(parking_ids)},
                    optional={"evse_position": st.sampled_from(["LEFT", "RIGHT", "CENTER"])},
                ),
            )
            optional["parking"] = st.lists(link, max_size=2)
    return st.fixed_dictionaries(
        {
            "uid": IDS,
            "status": st.sampled_from(["AVAILABLE", "CHARGING", "OUTOFORDER"]),
            "connectors": st.lists(
                connector(v230), min_size=1, max_size=2, unique_by=unique_by("id")
            ),
            "last_updated": STAMPS,
        },
        optional=optional,
    )


def parking(parking_id: str) -> st.SearchStrategy[Json]:
    return st.fixed_dictionaries(
        {
            "id": st.just(parking_id),
            "vehicle_types": st.lists(open_enum(VehicleType, True), min_size=1, max_size=3),
            "restricted_to_type": st.booleans(),
            "reservation_required": st.booleans(),
        },
        optional={
            "physical_reference": st.text(alphabet="AB12", max_size=12),
            "max_vehicle_weight": st.integers(0, 40_000),
            "parking_space_width": st.sampled_from([250, 350.5]),
            "direction": st.sampled_from(["PARALLEL", "PERPENDICULAR", "ANGLE"]),
            "time_limit": st.integers(0, 600),
            "images": st.lists(image(True), max_size=1),
            "standards": st.lists(st.just("PAS 1899"), max_size=1),
        },
    )


def energy_mix(v230: bool) -> st.SearchStrategy[Json]:
    impact = st.fixed_dictionaries(
        {
            "category": open_enum(core_locations.EnvironmentalImpactCategory, v230),
            "amount": st.sampled_from([0, 12.5, 300]),
        }
    )
    return st.fixed_dictionaries(
        {"is_green_energy": st.booleans()},
        optional={"environ_impact": st.lists(impact, max_size=3)},
    )


@st.composite
def location(draw: st.DrawFn, v230: bool) -> Json:
    parking_ids = draw(st.lists(st.sampled_from(["P1", "P2", "P3"]), unique=True)) if v230 else []
    optional: dict[str, Any] = {
        "parking_type": open_enum(core_locations.ParkingType, v230),
        "facilities": st.lists(open_enum(core_locations.Facility, v230), max_size=3),
        "operator": st.fixed_dictionaries({"name": st.just("Op")}, optional={"logo": image(v230)}),
        "images": st.lists(image(v230), max_size=2),
        "energy_mix": energy_mix(v230),
        "x_custom": st.sampled_from(["kept", 7]),
    }
    if v230:
        optional["help_phone"] = st.just("+31301234567")
    body = draw(
        st.fixed_dictionaries(
            {
                "country_code": st.just("NL"),
                "party_id": st.just("V23"),
                "id": IDS,
                "publish": st.booleans(),
                "address": st.just("Kade 1"),
                "city": st.just("Utrecht"),
                "country": st.just("NLD"),
                "coordinates": st.just({"latitude": "52.090737", "longitude": "5.121420"}),
                "evses": st.lists(evse(v230, parking_ids), max_size=2, unique_by=unique_by("uid")),
                "time_zone": st.just("Europe/Amsterdam"),
                "last_updated": STAMPS,
            },
            optional=optional,
        )
    )
    if not body["publish"]:
        body["publish_allowed_to"] = [{"uid": "TOKEN1", "type": draw(open_enum(TokenType, v230))}]
    if parking_ids:
        body["parking_places"] = [draw(parking(p)) for p in parking_ids]
    return body


def same(a: Any, b: Any) -> bool:
    return bool(exact_numbers(to_json(a)) == exact_numbers(to_json(b)))


def without(data: Any, names: frozenset[str]) -> Any:
    if isinstance(data, dict):
        return {k: without(v, names) for k, v in data.items() if k not in names}
    if isinstance(data, list):
        return [without(v, names) for v in data]
    return data


# What the way through 2.3.0 adds to a 2.2.1 object: kept 2.3.0 fields.
ADDED = frozenset({mapping.TAXES, "tax_included"})


def same_in_2_2_1(a: Any, b: Any) -> bool:
    return bool(
        without(exact_numbers(to_json(a)), ADDED) == without(exact_numbers(to_json(b)), ADDED)
    )


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(location(v230=True))
def test_a_2_3_0_location_comes_back_whole_from_the_core(body: Json) -> None:
    received = v230_locations.Location.model_validate(body)
    core = mapping.location_to_core(received)
    assert mapping.location_from_core(core) == received
    assert same(mapping.location_from_core(core), received)


@FAST
@given(location(v230=False))
def test_a_2_2_1_location_keeps_its_fields_through_2_3_0(body: Json) -> None:
    core = core_locations.Location.model_validate(body)
    again = mapping.location_to_core(mapping.location_from_core(core))
    assert same(again, core)


# --------------------------------------------------------------------------
# Tariffs, sessions, CDRs
# --------------------------------------------------------------------------


def price_component() -> st.SearchStrategy[Json]:
    return st.fixed_dictionaries(
        {
            "type": st.sampled_from(["ENERGY", "FLAT", "TIME", "PARKING_TIME"]),
            "price": money(),
            "step_size": st.sampled_from([0, 1, 60, 300]),
        },
        optional={"vat": st.sampled_from([D(0), D(10), D("20.0"), D("9.975")])},
    )


@st.composite
def tariff(draw: st.DrawFn, v230: bool) -> Json:
    low = draw(st.none() | money())
    high = draw(st.none() | money())
    if low is not None and high is not None and low > high:
        low, high = high, low
    body: Json = {
        "country_code": "DE",
        "party_id": "V23",
        "id": draw(IDS),
        "currency": "EUR",
        "elements": [
            {"price_components": draw(st.lists(price_component(), min_size=1, max_size=3))}
        ],
        "last_updated": draw(STAMPS),
    }
    for name, amount in (("min_price", low), ("max_price", high)):
        if amount is None:
            continue
        if v230:
            body[name] = {"before_taxes": amount}
        else:
            body[name] = {"excl_vat": amount}
    if v230:
        body["tax_included"] = draw(st.sampled_from(["YES", "NO", "N/A"]))
        if draw(st.booleans()):
            body["preauthorize_amount"] = draw(money())
    if draw(st.booleans()):
        body["energy_mix"] = draw(energy_mix(v230))
    return body


@FAST
@given(tariff(v230=True))
def test_a_2_3_0_tariff_comes_back_whole_from_the_core(body: Json) -> None:
    received = v230_tariffs.Tariff.model_validate(body)
    back = mapping.tariff_from_core(mapping.tariff_to_core(received))
    assert back == received


@FAST
@given(tariff(v230=False))
def test_a_2_2_1_tariff_keeps_its_fields_through_2_3_0(body: Json) -> None:
    core = core_tariffs.Tariff.model_validate(body)
    out = mapping.tariff_from_core(core)
    assert out.tax_included is v230_tariffs.TaxIncluded.NO  # 2.2.1 prices are excl. VAT
    assert same_in_2_2_1(mapping.tariff_to_core(out), core)


@st.composite
def price(draw: st.DrawFn, v230: bool) -> Json:
    before = draw(money())
    if v230:
        body: Json = {"before_taxes": before}
        if draw(st.booleans()):
            tax = st.fixed_dictionaries(
                {"name": st.sampled_from(["VAT", "GST", "QST"]), "amount": money()},
                optional={
                    "percentage": st.sampled_from([D(5), D("9.975"), D(21)]),
                    "account_number": st.just("1234567890TQ0001"),
                },
            )
            body["taxes"] = draw(st.lists(tax, max_size=3))
        return body
    body = {"excl_vat": before}
    if draw(st.booleans()):
        body["incl_vat"] = before + draw(money())
    return body


@st.composite
def cdr(draw: st.DrawFn, v230: bool) -> Json:
    body: Json = {
        "country_code": "BE",
        "party_id": "V23",
        "id": draw(IDS),
        "start_date_time": "2025-03-01T10:00:00Z",
        "end_date_time": "2025-03-01T11:00:00Z",
        "cdr_token": {
            "country_code": "DE",
            "party_id": "EMS",
            "uid": "U1",
            "type": draw(open_enum(TokenType, v230)),
            "contract_id": "C1",
        },
        "auth_method": "WHITELIST",
        "cdr_location": {
            "id": "L1",
            "address": "A 1",
            "city": "B",
            "country": "BEL",
            "coordinates": {"latitude": "51.047599", "longitude": "3.729944"},
            "evse_uid": "E1",
            "evse_id": "BE*V23*E1",
            "connector_id": "1",
            "connector_standard": draw(open_enum(core_locations.ConnectorType, v230)),
            "connector_format": "CABLE",
            "connector_power_type": draw(st.sampled_from(["DC", "AC_1_PHASE"])),
        },
        "currency": "EUR",
        "charging_periods": [
            {
                "start_date_time": "2025-03-01T10:00:00Z",
                "dimensions": [{"type": "TIME", "volume": 1}],
            }
        ],
        "total_cost": draw(price(v230)),
        "total_energy": D("15.342"),
        "total_time": 1,
        "last_updated": "2025-03-01T11:00:01Z",
    }
    for name in ("total_energy_cost", "total_time_cost", "total_reservation_cost"):
        if draw(st.booleans()):
            body[name] = draw(price(v230))
    body["tariffs"] = [draw(tariff(v230))] if draw(st.booleans()) else []
    return body


@FAST
@given(cdr(v230=True))
def test_a_2_3_0_cdr_comes_back_whole_from_the_core(body: Json) -> None:
    received = v230_cdrs.Cdr.model_validate(body)
    core = mapping.cdr_to_core(received)
    assert mapping.cdr_from_core(core) == received
    # In the core, incl_vat is before_taxes plus every tax.
    taxes = received.total_cost.taxes
    if taxes is not None:
        assert core.total_cost.incl_vat == received.total_cost.before_taxes + sum(
            (t.amount for t in taxes), D(0)
        )


@FAST
@given(cdr(v230=False))
def test_a_2_2_1_cdr_keeps_its_fields_through_2_3_0(body: Json) -> None:
    core = core_cdrs.Cdr.model_validate(body)
    out = mapping.cdr_from_core(core)
    assert same_in_2_2_1(mapping.cdr_to_core(out), core)


@FAST
@given(price(v230=True), open_enum(TokenType, True))
def test_a_2_3_0_session_comes_back_whole_from_the_core(total: Json, token_type: str) -> None:
    received = v230_sessions.Session.model_validate(session_body(total, token_type))
    assert mapping.session_from_core(mapping.session_to_core(received)) == received


@FAST
@given(price(v230=False))
def test_a_2_2_1_session_keeps_its_fields_through_2_3_0(total: Json) -> None:
    core = core_sessions.Session.model_validate(session_body(total, "RFID"))
    assert same_in_2_2_1(mapping.session_to_core(mapping.session_from_core(core)), core)


def session_body(total: Json, token_type: str) -> Json:
    return {
        "country_code": "NL",
        "party_id": "V23",
        "id": "S1",
        "start_date_time": "2025-03-01T10:00:00Z",
        "kwh": D("12.5"),
        "cdr_token": {
            "country_code": "DE",
            "party_id": "EMS",
            "uid": "U1",
            "type": token_type,
            "contract_id": "C1",
        },
        "auth_method": "COMMAND",
        "location_id": "L1",
        "evse_uid": "E1",
        "connector_id": "1",
        "currency": "EUR",
        "total_cost": total,
        "status": "ACTIVE",
        "last_updated": "2025-03-01T10:15:00Z",
    }


# --------------------------------------------------------------------------
# The rules, one by one
# --------------------------------------------------------------------------


def one_connector_location(standard: str, power_type: str = "DC") -> v230_locations.Location:
    return v230_locations.Location.model_validate(
        {
            "country_code": "NL",
            "party_id": "V23",
            "id": "L1",
            "publish": True,
            "address": "Kade 1",
            "city": "Utrecht",
            "country": "NLD",
            "coordinates": {"latitude": "52.090737", "longitude": "5.121420"},
            "evses": [
                {
                    "uid": "E1",
                    "status": "AVAILABLE",
                    "connectors": [
                        {
                            "id": "1",
                            "standard": standard,
                            "format": "CABLE",
                            "power_type": power_type,
                            "max_voltage": 1000,
                            "max_amperage": 500,
                            "last_updated": "2025-03-01T10:00:00Z",
                        }
                    ],
                    "last_updated": "2025-03-01T10:00:00Z",
                }
            ],
            "time_zone": "Europe/Amsterdam",
            "last_updated": "2025-03-01T10:00:00Z",
        }
    )


def test_unlisted_connector_types_get_a_2_2_1_stand_in_and_keep_their_value() -> None:
    cases = [
        ("SAE_J3400", "DC", "TESLA_S"),
        ("MCS", "DC", "IEC_62196_T2_COMBO"),
        ("X_NEW_PLUG", "AC_3_PHASE", "IEC_62196_T2"),
    ]
    for standard, power, stand_in in cases:
        core = mapping.location_to_core(one_connector_location(standard, power))
        assert core.evses is not None
        connector = core.evses[0].connectors[0]
        assert connector.standard.value == stand_in
        assert (connector.model_extra or {})[mapping.KEPT] == {"standard": standard}


def test_a_later_2_2_1_write_of_a_stood_in_field_wins() -> None:
    core = mapping.location_to_core(one_connector_location("MCS"))
    data = to_json(core)
    data["evses"][0]["connectors"][0]["standard"] = "CHADEMO"  # a 2.2.1 PUT/PATCH
    out = mapping.location_from_core(core_locations.Location.model_validate(data))
    assert out.evses is not None
    assert out.evses[0].connectors[0].standard == core_locations.ConnectorType.CHADEMO


def test_a_2_2_1_price_gets_one_vat_line_with_the_tariffs_single_rate() -> None:
    body = cdr_2_2_1()
    out = mapping.cdr_from_core(core_cdrs.Cdr.model_validate(body))
    assert out.total_cost.before_taxes == D("4.00")
    assert out.total_cost.taxes is not None
    [tax] = out.total_cost.taxes
    assert (tax.name, tax.amount, tax.percentage) == ("VAT", D("0.40"), D(10))
    # Without incl_vat, no tax is stated.
    del body["total_cost"]["incl_vat"]
    out = mapping.cdr_from_core(core_cdrs.Cdr.model_validate(body))
    assert out.total_cost.taxes is None
    # Two rates: the line has no percentage.
    body = cdr_2_2_1(rates=(D(10), D(20)))
    [tax] = mapping.cdr_from_core(core_cdrs.Cdr.model_validate(body)).total_cost.taxes or []
    assert tax.percentage is None


def test_kept_taxes_that_no_longer_add_up_are_derived_again() -> None:
    core = mapping.cdr_to_core(
        v230_cdrs.Cdr.model_validate(
            {
                **{k: v for k, v in cdr_2_2_1().items() if k != "total_cost"},
                "total_cost": {"before_taxes": D(4), "taxes": [{"name": "GST", "amount": D(1)}]},
                "tariffs": [],
            }
        )
    )
    data = exact_numbers(to_json(core))
    data["total_cost"]["incl_vat"] = D("4.80")  # a 2.2.1 writer changed the price
    out = mapping.cdr_from_core(core_cdrs.Cdr.model_validate(data))
    assert [(t.name, t.amount) for t in out.total_cost.taxes or []] == [("VAT", D("0.80"))]


def test_tax_included_of_a_core_tariff() -> None:
    base = {
        "country_code": "CA",
        "party_id": "V23",
        "id": "T1",
        "currency": "CAD",
        "elements": [{"price_components": [{"type": "TIME", "price": D("2.10"), "step_size": 1}]}],
        "last_updated": "2025-03-01T10:00:00Z",
    }
    core = mapping.tariff_to_core(
        v230_tariffs.Tariff.model_validate({**base, "tax_included": "YES"})
    )
    assert mapping.tax_included_of(core) is v230_tariffs.TaxIncluded.YES
    assert mapping.tax_included_of(core_tariffs.Tariff.model_validate(base)) is (
        v230_tariffs.TaxIncluded.NO
    )


def cdr_2_2_1(rates: tuple[Decimal, ...] = (D(10),)) -> Json:
    return {
        "country_code": "BE",
        "party_id": "V23",
        "id": "CDR-1",
        "start_date_time": "2025-03-01T10:00:00Z",
        "end_date_time": "2025-03-01T12:00:00Z",
        "cdr_token": {
            "country_code": "DE",
            "party_id": "EMS",
            "uid": "U1",
            "type": "RFID",
            "contract_id": "C1",
        },
        "auth_method": "WHITELIST",
        "cdr_location": {
            "id": "L1",
            "address": "A 1",
            "city": "B",
            "country": "BEL",
            "coordinates": {"latitude": "51.047599", "longitude": "3.729944"},
            "evse_uid": "E1",
            "evse_id": "BE*V23*E1",
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "currency": "EUR",
        "tariffs": [
            {
                "country_code": "BE",
                "party_id": "V23",
                "id": "T1",
                "currency": "EUR",
                "elements": [
                    {
                        "price_components": [
                            {"type": "TIME", "price": D(2), "vat": rate, "step_size": 300}
                            for rate in rates
                        ]
                    }
                ],
                "last_updated": "2025-03-01T09:00:00Z",
            }
        ],
        "charging_periods": [
            {
                "start_date_time": "2025-03-01T10:00:00Z",
                "dimensions": [{"type": "TIME", "volume": 2}],
            }
        ],
        "total_cost": {"excl_vat": D("4.00"), "incl_vat": D("4.40")},
        "total_energy": D("15.342"),
        "total_time": 2,
        "last_updated": "2025-03-01T12:00:01Z",
    }
