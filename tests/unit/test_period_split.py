"""Cutting charging periods where a time-based tariff restriction changes
(``producers.pricing.split_at_tariff_boundaries``), and pricing the pieces."""

from __future__ import annotations

import ast
import inspect
from bisect import bisect_right
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producers import pricing
from producers.pricing import price_session, split_at_tariff_boundaries
from schemas.ocpi.cdrs import CdrDimension, CdrDimensionType, ChargingPeriod
from schemas.ocpi.tariffs import (
    DayOfWeek,
    PriceComponent,
    Tariff,
    TariffDimensionType,
    TariffElement,
    TariffRestrictions,
)

D = Decimal
Dim = CdrDimensionType
AMSTERDAM = "Europe/Amsterdam"
SHARED = (Dim.ENERGY, Dim.TIME, Dim.PARKING_TIME, Dim.RESERVATION_TIME)


def pc(kind: str, price: str) -> PriceComponent:
    return PriceComponent(type=TariffDimensionType(kind), price=D(price), step_size=1)


def el(*components: PriceComponent, **restrictions: Any) -> TariffElement:
    return TariffElement(
        price_components=list(components),
        restrictions=TariffRestrictions(**restrictions) if restrictions else None,
    )


def tariff(*elements: TariffElement) -> Tariff:
    return Tariff(
        country_code="BE",
        party_id="PRC",
        id="SPLIT-TEST",
        currency="EUR",
        elements=list(elements),
        last_updated=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def local(year: int, month: int, day: int, hour: int, minute: int, fold: int = 0) -> datetime:
    wall = datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(AMSTERDAM), fold=fold)
    return wall.astimezone(UTC)


def period(at: datetime, tariff_id: str | None = None, **volumes: str) -> ChargingPeriod:
    return ChargingPeriod(
        start_date_time=at,
        dimensions=[CdrDimension(type=Dim(k.upper()), volume=D(v)) for k, v in volumes.items()],
        tariff_id=tariff_id,
    )


def volumes(p: ChargingPeriod) -> dict[Dim, Decimal]:
    return {d.type: d.volume for d in p.dimensions}


def split(
    t: Tariff, periods: Sequence[ChargingPeriod], end: datetime, start: datetime | None = None
) -> list[ChargingPeriod]:
    first = periods[0].start_date_time if start is None else start
    return split_at_tariff_boundaries(t, periods, start=first, end=end, time_zone=AMSTERDAM)


DAY_NIGHT = tariff(
    el(pc("ENERGY", "0.40"), start_time="07:00", end_time="23:00"),
    el(pc("ENERGY", "0.20"), start_time="23:00", end_time="07:00"),
)


# --- time of day -----------------------------------------------------------------


def test_a_period_across_the_night_rate_is_priced_as_two_halves() -> None:
    start, end = local(2026, 6, 2, 22, 30), local(2026, 6, 2, 23, 30)
    periods = [period(start, energy="10", time="1", max_power="22")]
    pieces = split(DAY_NIGHT, periods, end)
    assert [p.start_date_time for p in pieces] == [start, local(2026, 6, 2, 23, 0)]
    assert [volumes(p) for p in pieces] == [
        {Dim.ENERGY: D(5), Dim.TIME: D("0.5"), Dim.MAX_POWER: D(22)},
        {Dim.ENERGY: D(5), Dim.TIME: D("0.5"), Dim.MAX_POWER: D(22)},
    ]
    priced = price_session(DAY_NIGHT, pieces, start=start, end=end, time_zone=AMSTERDAM)
    assert priced.total_cost.excl_vat == D("3.00")  # 5 x 0.40 + 5 x 0.20
    unsplit = price_session(DAY_NIGHT, periods, start=start, end=end, time_zone=AMSTERDAM)
    assert unsplit.total_cost.excl_vat == D("4.00")  # all at the day rate


def test_a_period_that_crosses_nothing_is_returned_as_it_was() -> None:
    start, end = local(2026, 6, 2, 20, 0), local(2026, 6, 2, 21, 0)
    periods = [period(start, "SPLIT-TEST", energy="7.1234", time="1")]
    assert split(DAY_NIGHT, periods, end) == periods
    assert split(DAY_NIGHT, periods, end)[0] is periods[0]


def test_a_tariff_without_time_restrictions_changes_nothing() -> None:
    t = tariff(el(pc("ENERGY", "0.30"), min_kwh=D(5), max_power=D(11)), el(pc("ENERGY", "0.25")))
    start = local(2026, 6, 2, 22, 0)
    periods = [period(start, energy="10", time="3"), period(start + timedelta(hours=3), energy="1")]
    assert split(t, periods, start + timedelta(hours=4)) == periods


def test_a_window_that_wraps_past_midnight_cuts_on_each_day_it_spans() -> None:
    # Two nights and the day between them in one (parking) period.
    start, end = local(2026, 6, 1, 22, 0), local(2026, 6, 3, 0, 0)
    pieces = split(DAY_NIGHT, [period(start, parking_time="26")], end)
    assert [p.start_date_time for p in pieces] == [
        start,
        local(2026, 6, 1, 23, 0),
        local(2026, 6, 2, 7, 0),
        local(2026, 6, 2, 23, 0),
    ]
    assert [volumes(p)[Dim.PARKING_TIME] for p in pieces] == [D(1), D(8), D(16), D(1)]


def test_a_window_open_to_midnight_cuts_at_midnight() -> None:
    t = tariff(el(pc("TIME", "3"), start_time="22:00"), el(pc("TIME", "1")))
    start, end = local(2026, 6, 2, 23, 0), local(2026, 6, 3, 1, 0)
    pieces = split(t, [period(start, time="2")], end)
    assert [p.start_date_time for p in pieces] == [start, local(2026, 6, 3, 0, 0)]
    priced = price_session(t, pieces, start=start, end=end, time_zone=AMSTERDAM)
    assert priced.total_cost.excl_vat == D(4)


# --- days ------------------------------------------------------------------------


def test_a_period_across_midnight_into_saturday() -> None:
    t = tariff(
        el(pc("TIME", "2"), day_of_week=[DayOfWeek.SATURDAY, DayOfWeek.SUNDAY]),
        el(pc("TIME", "1")),
    )
    friday_night = local(2026, 6, 5, 23, 30)  # 2026-06-05 is a Friday
    end = local(2026, 6, 6, 0, 30)
    pieces = split(t, [period(friday_night, time="1", energy="3")], end)
    assert [p.start_date_time for p in pieces] == [friday_night, local(2026, 6, 6, 0, 0)]
    assert [volumes(p) for p in pieces] == [
        {Dim.TIME: D("0.5"), Dim.ENERGY: D("1.5")},
        {Dim.TIME: D("0.5"), Dim.ENERGY: D("1.5")},
    ]
    priced = price_session(t, pieces, start=friday_night, end=end, time_zone=AMSTERDAM)
    assert priced.total_cost.excl_vat == D("1.5")


def test_midnight_between_two_weekdays_is_no_cut() -> None:
    t = tariff(el(pc("TIME", "2"), day_of_week=[DayOfWeek.SATURDAY]), el(pc("TIME", "1")))
    tuesday_night = local(2026, 6, 2, 23, 30)
    periods = [period(tuesday_night, time="1")]
    assert split(t, periods, local(2026, 6, 3, 0, 30)) == periods


def test_an_end_date_cuts_at_local_midnight() -> None:
    t = tariff(el(pc("ENERGY", "0.20"), end_date="2026-07-01"), el(pc("ENERGY", "0.30")))
    start, end = local(2026, 6, 30, 23, 0), local(2026, 7, 1, 1, 0)
    pieces = split(t, [period(start, energy="4")], end)
    # Local midnight in summer is 22:00 UTC.
    assert [p.start_date_time for p in pieces] == [start, datetime(2026, 6, 30, 22, tzinfo=UTC)]
    priced = price_session(t, pieces, start=start, end=end, time_zone=AMSTERDAM)
    assert priced.total_cost.excl_vat == D("1.00")  # 2 x 0.20 + 2 x 0.30


# --- DST in Europe/Amsterdam -----------------------------------------------------


def test_spring_forward_shares_by_real_not_wall_clock_hours() -> None:
    # 2026-03-29: 02:00 CET becomes 03:00 CEST. Local midnight to 08:00 is
    # 7 real hours; 07:00 comes after 6 of them.
    t = tariff(el(pc("ENERGY", "0.40"), start_time="07:00", end_time="23:00"))
    start, end = local(2026, 3, 29, 0, 0), local(2026, 3, 29, 8, 0)
    assert end - start == timedelta(hours=7)
    pieces = split(t, [period(start, energy="7", time="7")], end)
    assert [p.start_date_time for p in pieces] == [start, datetime(2026, 3, 29, 5, tzinfo=UTC)]
    assert [volumes(p) for p in pieces] == [
        {Dim.ENERGY: D(6), Dim.TIME: D(6)},
        {Dim.ENERGY: D(1), Dim.TIME: D(1)},
    ]


def test_spring_forward_over_a_skipped_wall_time_cuts_at_the_jump() -> None:
    # 02:30 does not exist that night: the wall clock jumps from 02:00 to
    # 03:00 at 01:00 UTC, and a window from 02:30 holds from then on.
    t = tariff(el(pc("TIME", "2"), start_time="02:30", end_time="06:00"), el(pc("TIME", "1")))
    start, end = datetime(2026, 3, 29, 0, 30, tzinfo=UTC), datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    pieces = split(t, [period(start, time="1")], end)
    assert [p.start_date_time for p in pieces] == [start, datetime(2026, 3, 29, 1, tzinfo=UTC)]
    priced = price_session(t, pieces, start=start, end=end, time_zone=AMSTERDAM)
    assert priced.total_cost.excl_vat == D("1.5")


def test_fall_back_repeats_a_wall_time_and_cuts_each_time() -> None:
    # 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC, so 02:30 happens
    # at 00:30 UTC and again at 01:30 UTC; between, the clock goes back to
    # 02:00, before the window.
    t = tariff(el(pc("TIME", "2"), start_time="02:30", end_time="06:00"), el(pc("TIME", "1")))
    start, end = datetime(2026, 10, 25, 0, 0, tzinfo=UTC), datetime(2026, 10, 25, 2, tzinfo=UTC)
    assert local(2026, 10, 25, 2, 30) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert local(2026, 10, 25, 2, 30, fold=1) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    pieces = split(t, [period(start, time="2")], end)
    assert [p.start_date_time for p in pieces] == [
        start,
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    ]
    assert [volumes(p)[Dim.TIME] for p in pieces] == [D("0.5")] * 4
    priced = price_session(t, pieces, start=start, end=end, time_zone=AMSTERDAM)
    assert priced.total_cost.excl_vat == D(3)  # 0.5 h x (1 + 2 + 1 + 2)


def test_fall_back_night_rate_counts_the_extra_hour() -> None:
    start, end = local(2026, 10, 24, 22, 0), local(2026, 10, 25, 0, 0)
    pieces = split(DAY_NIGHT, [period(start, energy="3")], end)
    assert [p.start_date_time for p in pieces] == [start, local(2026, 10, 24, 23, 0)]
    start, end = local(2026, 10, 25, 6, 0), local(2026, 10, 25, 8, 0)
    pieces = split(DAY_NIGHT, [period(start, energy="3")], end)
    assert [volumes(p)[Dim.ENERGY] for p in pieces] == [D("1.5"), D("1.5")]
    # From local midnight to 07:00 is 8 real hours that night.
    start, end = local(2026, 10, 25, 0, 0), local(2026, 10, 25, 8, 0)
    pieces = split(DAY_NIGHT, [period(start, energy="9")], end)
    assert [volumes(p)[Dim.ENERGY] for p in pieces] == [D(8), D(1)]


# --- durations -------------------------------------------------------------------


def test_a_min_duration_inside_a_period_cuts_there() -> None:
    t = tariff(el(pc("TIME", "2"), min_duration=1800), el(pc("TIME", "1")))
    start = datetime(2026, 6, 2, 10, tzinfo=UTC)
    periods = [period(start, time="0.25"), period(start + timedelta(minutes=15), time="0.75")]
    end = start + timedelta(hours=1)
    pieces = split(t, periods, end)
    assert [p.start_date_time for p in pieces] == [
        start,
        start + timedelta(minutes=15),
        start + timedelta(minutes=30),
    ]
    assert [volumes(p)[Dim.TIME] for p in pieces] == [D("0.25"), D("0.25"), D("0.5")]
    priced = price_session(t, pieces, start=start, end=end, time_zone=AMSTERDAM)
    assert priced.total_cost.excl_vat == D("1.5")
    # At the threshold exactly (inclusive): the second of these starts there.
    assert split(t, pieces, end) == pieces


def test_durations_count_per_phase_as_the_engine_counts_them() -> None:
    t = tariff(
        el(pc("TIME", "0.50"), reservation="RESERVATION", max_duration=600),
        el(pc("TIME", "0.10"), reservation="RESERVATION"),
        el(pc("TIME", "2"), min_duration=1800),
        el(pc("TIME", "1")),
    )
    start = datetime(2026, 6, 2, 10, tzinfo=UTC)
    charging = start + timedelta(minutes=20)
    periods = [period(start, reservation_time="0.3333"), period(charging, time="1")]
    pieces = split(t, periods, charging + timedelta(hours=1))
    # Reservation: 10 min from the session's start. Charging: 30 min from
    # the first charging period, not from the session's start.
    assert [p.start_date_time for p in pieces] == [
        start,
        start + timedelta(minutes=10),
        charging,
        charging + timedelta(minutes=30),
    ]
    assert [volumes(p) for p in pieces] == [
        {Dim.RESERVATION_TIME: D("0.1667")},
        {Dim.RESERVATION_TIME: D("0.1666")},
        {Dim.TIME: D("0.5")},
        {Dim.TIME: D("0.5")},
    ]


# --- sharing ---------------------------------------------------------------------


def test_shares_round_the_running_total_and_the_last_piece_takes_the_rest() -> None:
    t = tariff(
        el(pc("TIME", "1"), start_time="10:20"),
        el(pc("TIME", "1"), start_time="10:40"),
    )
    start, end = local(2026, 6, 2, 10, 0), local(2026, 6, 2, 11, 0)
    pieces = split(
        t, [period(start, "SPLIT-TEST", energy="1", time="1", state_of_charge="80")], end
    )
    assert [volumes(p)[Dim.ENERGY] for p in pieces] == [D("0.3333"), D("0.3334"), D("0.3333")]
    assert sum(volumes(p)[Dim.ENERGY] for p in pieces) == D(1)
    assert all(volumes(p)[Dim.STATE_OF_CHARGE] == D(80) for p in pieces)
    assert all(p.tariff_id == "SPLIT-TEST" for p in pieces)
    # A volume with more decimals keeps them.
    pieces = split(t, [period(start, energy="0.123456")], end)
    assert [volumes(p)[Dim.ENERGY] for p in pieces] == [
        D("0.041152"),
        D("0.041152"),
        D("0.041152"),
    ]


def test_the_split_module_code_has_no_float() -> None:
    source = inspect.getsource(pricing)
    names = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
    assert "float" not in names
    floats = [
        n
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.Constant) and type(n.value) is float
    ]
    assert floats == []


# --- properties ------------------------------------------------------------------

_CLOCKS = st.sampled_from(["00:00", "01:30", "02:30", "07:00", "12:15", "23:00", "23:59"])
_SOMETIMES = st.integers(0, 2).map(lambda n: n == 0)
_DAYS = st.lists(st.sampled_from(list(DayOfWeek)), min_size=1, max_size=3, unique=True)


@st.composite
def timed_tariffs(draw: st.DrawFn) -> Tariff:
    elements = []
    for number in range(draw(st.integers(1, 3))):
        restrictions: dict[str, Any] = {}
        if number == 0 or draw(_SOMETIMES):  # at least one window
            restrictions["start_time"] = draw(_CLOCKS)
        if draw(_SOMETIMES):
            restrictions["end_time"] = draw(_CLOCKS)
        if draw(_SOMETIMES):
            restrictions["day_of_week"] = draw(_DAYS)
        if draw(_SOMETIMES):
            restrictions["min_duration"] = draw(st.integers(0, 200_000))
        if draw(_SOMETIMES):
            restrictions["max_duration"] = draw(st.integers(0, 200_000))
        if draw(_SOMETIMES):
            restrictions["start_date"] = draw(
                st.sampled_from(["2026-01-01", "2026-03-29", "2026-10-25", "2026-10-26"])
            )
        elements.append(el(pc("TIME", "1"), pc("ENERGY", "0.3"), **restrictions))
    elements.append(el(pc("PARKING_TIME", "2")))
    return tariff(*elements)


# Mostly minutes to hours, sometimes a few milliseconds.
_LENGTHS = st.one_of(
    st.integers(1, 1000),
    st.integers(60_000, 40 * 3_600_000),
    st.integers(3_600_000, 40 * 3_600_000),
)
_VOLUMES = st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False)


@st.composite
def sessions(draw: st.DrawFn) -> tuple[list[ChargingPeriod], datetime]:
    # Around both 2026 DST changes in Amsterdam.
    base = draw(
        st.sampled_from(
            [datetime(2026, 3, 28, 20, tzinfo=UTC), datetime(2026, 10, 24, 20, tzinfo=UTC)]
        )
    )
    at = base + timedelta(milliseconds=draw(st.integers(0, 86_400_000)))
    periods = []
    for _ in range(draw(st.integers(1, 5))):
        dims = [CdrDimension(type=Dim.ENERGY, volume=draw(_VOLUMES))]
        kind = draw(st.sampled_from([Dim.TIME, Dim.PARKING_TIME]))
        dims.append(CdrDimension(type=kind, volume=draw(_VOLUMES)))
        if draw(st.booleans()):
            dims.append(CdrDimension(type=Dim.MAX_POWER, volume=draw(_VOLUMES)))
        periods.append(ChargingPeriod(start_date_time=at, dimensions=dims))
        at += timedelta(milliseconds=draw(_LENGTHS))
    return periods, at


@settings(max_examples=200, deadline=None)
@given(timed_tariffs(), sessions())
def test_pieces_preserve_every_total_and_stay_in_their_period(
    t: Tariff, session: tuple[list[ChargingPeriod], datetime]
) -> None:
    periods, end = session
    pieces = split(t, periods, end)
    starts = [p.start_date_time for p in pieces]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    originals = [p.start_date_time for p in periods]
    assert set(originals) <= set(starts)
    grouped: list[list[ChargingPeriod]] = [[] for _ in periods]
    for piece in pieces:
        index = bisect_right(originals, piece.start_date_time) - 1
        assert index >= 0 and piece.start_date_time < end
        grouped[index].append(piece)
    for original, group in zip(periods, grouped, strict=True):
        if len(group) == 1:
            assert group[0] == original
        for dim in original.dimensions:
            got = [volumes(p)[dim.type] for p in group]
            assert all(type(v) is Decimal for v in got)
            if dim.type in SHARED:
                assert sum(got, D(0)) == dim.volume
                assert all(v >= 0 for v in got)
            else:
                assert got == [dim.volume] * len(group)
        assert all(volumes(p).keys() == volumes(original).keys() for p in group)
    for dim in SHARED:
        total_in = sum((volumes(p).get(dim, D(0)) for p in periods), D(0))
        assert sum((volumes(p).get(dim, D(0)) for p in pieces), D(0)) == total_in
    # Cutting again finds nothing more to cut, and the pieces still price.
    assert split(t, pieces, end) == pieces
    price_session(t, pieces, start=periods[0].start_date_time, end=end, time_zone=AMSTERDAM)


@settings(max_examples=100, deadline=None)
@given(timed_tariffs(), sessions())
def test_every_piece_is_uniform_in_time_based_truth(
    t: Tariff, session: tuple[list[ChargingPeriod], datetime]
) -> None:
    # Sampled check against the engine's own reading: a restriction that
    # holds at a piece's start holds all through it (probed every 7 min).
    periods, end = session
    pieces = split(t, periods, end)
    zone = ZoneInfo(AMSTERDAM)
    start = periods[0].start_date_time
    ends = [p.start_date_time for p in pieces[1:]] + [end]
    for piece, piece_end in zip(pieces, ends, strict=True):
        at = piece.start_date_time
        first = None
        while at < piece_end:
            truth = tuple(
                pricing._time_holds(
                    e.restrictions, at.astimezone(zone), pricing._seconds(at - start)
                )
                for e in t.elements
                if e.restrictions is not None
            )
            first = truth if first is None else first
            assert truth == first
            at += timedelta(minutes=7)


def test_inputs_out_of_order_are_refused() -> None:
    start = local(2026, 6, 2, 22, 30)
    periods = [period(start, energy="1"), period(start, energy="1")]
    with pytest.raises(pricing.PricingError):
        split(DAY_NIGHT, periods, start + timedelta(hours=1))


def test_a_cut_between_two_milliseconds_goes_to_the_later_one() -> None:
    # Periods keep their start to the millisecond (valid inputs only give
    # whole-millisecond cuts; this guards the others): a piece must not
    # start before its cut.
    at = datetime(2026, 6, 2, 10, 0, 0, 1500, tzinfo=UTC)
    assert pricing._ceil_ms(at) == datetime(2026, 6, 2, 10, 0, 0, 2000, tzinfo=UTC)
    assert pricing._ceil_ms(at.replace(microsecond=2000)) == at.replace(microsecond=2000)
