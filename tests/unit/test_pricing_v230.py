"""The pricing engine on OCPI 2.3.0 tariffs (producers/pricing.py, rules 9
and 10; docs/adr/0046): tax lists per rate, tax_included, PriceLimits.

The worked examples of mod_tariffs (tag v2.3.0) that give figures, on
tariffs written here as 2.3.0 objects (our ids; the spec's prices, rates,
step sizes, quantities and results) and mapped to the core as a 2.3.0
tariff received would be. Exact Decimals throughout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.pricing import COSTS, PricedSession, TaxShare, price_session
from schemas.ocpi.cdrs import CdrDimension, CdrDimensionType, ChargingPeriod
from schemas.ocpi.tariffs import Tariff
from schemas.ocpi.v230.mapping import tariff_to_core
from schemas.ocpi.v230.tariffs import Tariff as TariffV230
from schemas.ocpi.v230.tariffs import TaxIncluded

D = Decimal
Dim = CdrDimensionType
START = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)  # a Tuesday


def component(kind: str, price: str, step: int = 1, vat: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": kind, "price": D(price), "step_size": step}
    if vat is not None:
        body["vat"] = D(vat)
    return body


def tariff(
    *components: dict[str, Any],
    tax_included: str = "NO",
    min_price: tuple[str, str | None] | None = None,
    max_price: tuple[str, str | None] | None = None,
    currency: str = "EUR",
) -> Tariff:
    body: dict[str, Any] = {
        "country_code": "DE",
        "party_id": "V23",
        "id": "T-230",
        "currency": currency,
        "elements": [{"price_components": list(components)}],
        "tax_included": tax_included,
        "last_updated": "2025-01-01T00:00:00Z",
    }
    for name, limit in (("min_price", min_price), ("max_price", max_price)):
        if limit is not None:
            body[name] = {"before_taxes": D(limit[0])}
            if limit[1] is not None:
                body[name]["after_taxes"] = D(limit[1])
    return tariff_to_core(TariffV230.model_validate(body))


def session(t: Tariff, *, kwh: str = "0", minutes: int = 0, parked: int = 0) -> PricedSession:
    dimensions = [CdrDimension(type=Dim.ENERGY, volume=D(kwh))]
    if minutes:
        dimensions.append(CdrDimension(type=Dim.TIME, volume=D(minutes) / 60))
    periods = [ChargingPeriod(start_date_time=START, dimensions=dimensions)]
    end = START + timedelta(minutes=minutes)
    if parked:
        periods.append(
            ChargingPeriod(
                start_date_time=end,
                dimensions=[CdrDimension(type=Dim.PARKING_TIME, volume=D(parked) / 60)],
            )
        )
        end += timedelta(minutes=parked)
    return price_session(t, periods, start=START, end=end, time_zone="Europe/Berlin")


def taxes(priced: PricedSession, cost: str = "total_cost") -> list[tuple[Decimal | None, Decimal]]:
    return [(s.percentage, s.amount) for s in priced.taxes[cost]]


def total(priced: PricedSession) -> tuple[Decimal, Decimal | None]:
    return priced.total_cost.excl_vat, priced.total_cost.incl_vat


def test_simple_2_euro_per_hour() -> None:
    # 2.00/h, 10 % VAT, per minute; 2.5 h: 5.00 excl., 5.50 incl.
    priced = session(tariff(component("TIME", "2.00", 60, "10")), minutes=150)
    assert total(priced) == (D("5.0000"), D("5.5000"))
    assert taxes(priced) == [(D(10), D("0.5000"))]
    price = priced.price_v230("total_cost")
    assert price.before_taxes == D("5.0000") and price.after_taxes() == D("5.5000")


def test_north_american_taxes_not_included() -> None:
    # C$ 2.00/h, no VAT, tax_included NO; 2.5 h: C$ 5.00 "plus taxes".
    t = tariff(component("TIME", "2.00", 1), currency="CAD")
    priced = session(t, minutes=150)
    assert total(priced) == (D("5.0000"), None)
    assert priced.taxes["total_cost"] == ()
    assert priced.price_v230("total_cost").taxes is None  # taxes unknown to the CPO


def test_north_american_taxes_included() -> None:
    # C$ 2.10/h, tax_included YES, no VAT; 2.5 h: C$ 5.25, taxes included.
    t = tariff(component("TIME", "2.10", 1), tax_included="YES", currency="CAD")
    priced = session(t, minutes=150)
    assert priced.tax_included is TaxIncluded.YES
    assert total(priced) == (D("5.2500"), D("5.2500"))
    assert priced.price_v230("total_cost").after_taxes() == D("5.2500")


def test_min_price() -> None:
    # 0.25/kWh, 10 % VAT, min 0.50 / 0.55: 20 kWh cost 5.00 / 5.50 ...
    t = tariff(component("ENERGY", "0.25", 1, "10"), min_price=("0.50", "0.55"))
    priced = session(t, kwh="20", minutes=60)
    assert total(priced) == (D("5.0000"), D("5.5000"))
    assert not priced.min_price_applied
    # ... and below 2 kWh the minimum, its tax the limit's difference.
    priced = session(t, kwh="1", minutes=10)
    assert priced.min_price_applied
    assert total(priced) == (D("0.5000"), D("0.5500"))
    assert taxes(priced) == [(D(10), D("0.0500"))]
    # The energy cost itself is not clamped (2.2.1 rule 7), nor its taxes.
    assert taxes(priced, "total_energy_cost") == [(D(10), D("0.0250"))]


def test_start_fee_energy_and_parking_two_rates() -> None:
    # 0.50 start (20 %), 0.25/kWh (10 %), parking 2.00/h (20 %) per 15 min;
    # 20 kWh then 40 min parked (billed 45): 7.00 excl., 7.90 incl.
    t = tariff(
        component("FLAT", "0.50", 1, "20"),
        component("ENERGY", "0.25", 1, "10"),
        component("PARKING_TIME", "2.00", 900, "20"),
    )
    priced = session(t, kwh="20", minutes=60, parked=40)
    assert total(priced) == (D("7.0000"), D("7.9000"))
    assert taxes(priced) == [(D(20), D("0.4000")), (D(10), D("0.5000"))]
    assert taxes(priced, "total_parking_cost") == [(D(20), D("0.3000"))]
    assert taxes(priced, "total_fixed_cost") == [(D(20), D("0.1000"))]


def test_max_price_with_two_rates() -> None:
    # Start 0.50 (20 %), 0.25/kWh (10 %), max 10 / 11.
    t = tariff(
        component("FLAT", "0.50", 1, "20"),
        component("ENERGY", "0.25", 1, "10"),
        max_price=("10", "11"),
    )
    # 30 kWh: 8.00 / 8.85, under the limit.
    priced = session(t, kwh="30", minutes=60)
    assert total(priced) == (D("8.0000"), D("8.8500"))
    assert taxes(priced) == [(D(20), D("0.1000")), (D(10), D("0.7500"))]
    # 50 kWh: 13.00 / 14.35 clamped to 10.00 / 11.00; the 1.00 of tax is
    # shared as 0.10 : 1.25 was.
    priced = session(t, kwh="50", minutes=60)
    assert priced.max_price_applied
    assert total(priced) == (D("10"), D("11"))
    assert taxes(priced) == [(D(20), D("0.0741")), (D(10), D("0.9259"))]


def test_alt_url_example_energy_per_100_wh() -> None:
    # Start 0.50 (20 %), 0.25/kWh (10 %) per 100 Wh; 20.45 kWh billed as
    # 20.5: 5.625 excl., 6.2375 incl. (the spec's 5.63 and 6.24 in cents).
    t = tariff(component("FLAT", "0.50", 1, "20"), component("ENERGY", "0.25", 100, "10"))
    priced = session(t, kwh="20.45", minutes=60)
    assert total(priced) == (D("5.6250"), D("6.2375"))
    assert taxes(priced) == [(D(20), D("0.1000")), (D(10), D("0.5125"))]


def test_prices_including_vat_are_split_exactly() -> None:
    # 0.30/kWh including 21 % VAT: 10 kWh = 3.00 after taxes,
    # 3 / 1.21 = 2.479338... before, rounded once; the tax is the rest.
    t = tariff(component("ENERGY", "0.30", 1, "21"), tax_included="YES")
    priced = session(t, kwh="10", minutes=60)
    assert total(priced) == (D("2.4793"), D("3.0000"))
    assert taxes(priced) == [(D(21), D("0.5207"))]
    # 2.20/h including 10 %: 2.5 h = 5.50, exactly 5.00 + 0.50.
    priced = session(tariff(component("TIME", "2.20", 60, "10"), tax_included="YES"), minutes=150)
    assert total(priced) == (D("5.0000"), D("5.5000"))
    assert taxes(priced) == [(D(10), D("0.5000"))]


def test_not_applicable_means_no_taxes() -> None:
    priced = session(tariff(component("TIME", "2.00", 60), tax_included="N/A"), minutes=150)
    assert total(priced) == (D("5.0000"), D("5.0000"))
    assert priced.price_v230("total_cost").taxes == []
    # A component that states a VAT anyway is taxed as under NO.
    priced = session(tariff(component("TIME", "2.00", 60, "10"), tax_included="N/A"), minutes=150)
    assert total(priced) == (D("5.0000"), D("5.5000"))


def test_a_minimum_on_a_tariff_without_vat_lines_is_one_tax_line_without_rate() -> None:
    t = tariff(component("ENERGY", "0.25", 1), tax_included="YES", min_price=("1.00", "1.20"))
    priced = session(t, kwh="1", minutes=10)
    assert total(priced) == (D("1.00"), D("1.20"))
    assert priced.taxes["total_cost"] == (TaxShare(percentage=None, amount=D("0.20")),)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["FLAT", "ENERGY", "TIME"]),
            st.decimals(min_value=0, max_value=50, places=3),
            st.sampled_from([None, D(0), D(6), D(10), D("9.975"), D(21)]),
        ),
        min_size=1,
        max_size=3,
        unique_by=lambda c: c[0],
    ),
    st.sampled_from(["YES", "NO", "N/A"]),
    st.decimals(min_value=0, max_value=200, places=3),
    st.integers(min_value=1, max_value=600),
)
def test_before_taxes_plus_taxes_is_after_taxes_for_every_cost(
    components: list[tuple[str, Decimal, Decimal | None]],
    mode: str,
    kwh: Decimal,
    minutes: int,
) -> None:
    t = tariff(
        *(
            component(kind, str(price), 1, None if vat is None else str(vat))
            for kind, price, vat in components
        ),
        tax_included=mode,
    )
    priced = session(t, kwh=str(kwh), minutes=minutes)
    for cost in COSTS:
        price = getattr(priced, cost)
        v230 = priced.price_v230(cost)
        assert v230.before_taxes == price.excl_vat
        if price.incl_vat is not None:
            assert v230.after_taxes() == price.incl_vat, cost
            assert price.excl_vat <= price.incl_vat
        for share in priced.taxes[cost]:
            assert share.amount == share.amount.quantize(D("0.0001"))


@pytest.mark.parametrize("mode", ["NO", None])
def test_a_2_2_1_tariff_prices_as_before(mode: str | None) -> None:
    """Without tax_included, or with NO, the 2.2.1 results are unchanged."""
    body: dict[str, Any] = {
        "country_code": "DE",
        "party_id": "V23",
        "id": "T-221",
        "currency": "EUR",
        "elements": [{"price_components": [component("ENERGY", "0.25", 1, "10")]}],
        "last_updated": "2025-01-01T00:00:00Z",
    }
    if mode is not None:
        body["tax_included"] = mode
    priced = session(Tariff.model_validate(body), kwh="20", minutes=60)
    assert total(priced) == (D("5.0000"), D("5.5000"))
    assert priced.tax_included is TaxIncluded.NO
