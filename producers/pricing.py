"""Price a charging session against an OCPI 2.2.1 Tariff. Pure: no I/O, no clock.

``price_session(tariff, periods, start=, end=, time_zone=)`` takes the Tariff as
it was at session start, the session's ChargingPeriods, the session's start and
end, and the Location's IANA time zone captured at session start (a
CdrLocation has no time zone, #517). It returns the CDR totals and every
period annotated with the Tariff Element and Price Component that priced it.

Spec: ``mod_tariffs.asciidoc`` and ``mod_cdrs.asciidoc`` of OCPI 2.2.1 (tag
v2.2.1-d2, with the release-2.2.1-bugfixes errata, which correct the numbers of
the "switching to Free-of-Charge Tariff Element" example; no rule changed).

Algorithm
=========

1. Phases. A period that has a RESERVATION_TIME dimension belongs to the
   reservation; the others to charging. Reservation periods are priced only by
   Tariff Elements with a ``reservation`` restriction ("When this field is
   present, the TariffElement describes reservation costs"), charging periods
   only by Elements without one. RESERVATION_EXPIRES Elements apply only when
   the caller says the reservation expired; then they are tried before the
   RESERVATION ones (note under ReservationRestrictionType: with both, "the time
   based cost of an expired reservation will be calculated based on the
   RESERVATION_EXPIRES Tariff Element"), and RESERVATION Elements still apply
   (tariff example 17: an expired reservation pays the RESERVATION Element's
   time). Reservation time is priced by TIME components (TariffDimensionType
   TIME: "Can also be used in combination with a RESERVATION restriction").
2. Lookup (Tariff object): for each period and each dimension with a non-zero
   volume (ENERGY, TIME, PARKING_TIME; RESERVATION_TIME as TIME), the Price
   Component is the first one of that dimension in the first Element, in list
   order, whose restrictions all hold (TariffRestrictions: "logical AND"). No
   such Element: that volume costs nothing. Restrictions are evaluated at the
   period's start: a CPO "SHALL add a new Charging Period" whenever another
   Price Component becomes active (mod_cdrs, ChargingPeriod), so nothing
   price-relevant changes inside a period. Periods that were not cut that
   way (ours follow the meter) can first be cut where a time-based
   restriction changes with ``split_at_tariff_boundaries`` (end of module).
3. Restrictions, in the Location's local time (zoneinfo, so DST is handled by
   converting each instant): start_time inclusive, end_time exclusive, "If
   end_time < start_time then the period wraps around to the next day", end
   00:00 means end of day, start_time == end_time is read as the whole day;
   start_date inclusive, end_date exclusive, on the local date; day_of_week on
   the local date; min_kwh inclusive / max_kwh exclusive on the energy
   charged before the period; min_duration inclusive / max_duration exclusive
   on the seconds from the phase's start to the period's start; min_current
   and min_power inclusive ("more than, or equal to"), max_current and
   max_power exclusive ("less than"). The current is read from MIN_CURRENT,
   CURRENT or MAX_CURRENT (min restriction in that order, max restriction in
   reverse order; since periods are split at every price change, any of them
   is on the same side of a threshold); the same for power. A restriction on a
   quantity the period does not report does not hold.
4. FLAT: charged once per phase (Tariff object: a flat fee "has to be paid for
   any Charging Session"; examples 16 and 17 charge a reservation fee and a
   start fee in one CDR): the FLAT component of the first matching Element in
   the first period where there is one. Its ``step_size`` is ignored ("Flat
   fee without unit for step_size").
5. step_size (mod_cdrs, "step_size"): once per session for ENERGY and once
   for TIME and PARKING_TIME together, on the total of the session, with the
   step of the last period's component. "Together" means: only the dimension
   of the *last* period priced by a TIME or PARKING_TIME component is rounded,
   and the other is not (complex example: the charging time is not
   rounded because another time-based period follows it); the spec's worked numbers (mod_cdrs:
   21 min charging then 7 min parking, both steps 5 min -> 21 and 10 min;
   complex example, Saturday: 71 min parking -> 75 min; errata
   Free-of-Charge example: 8 billable parking minutes -> 15) only come out
   this way, not by rounding the sum of both.
   Only billable volume counts (volume that found a Price Component), and
   what rounding adds is billed in that last period ("The extra 7 minutes are
   then added to the last period with a Price Component with a time-based
   dimension"). Reservation time is rounded the same way, on its own (tariff
   examples 16-18 round the reservation time of a session that then charges).
   Units: 1 Wh for ENERGY, 1 s for time. A ``step_size`` of 0 means no
   rounding. Times arrive in hours, usually with 4 decimals (types.asciidoc,
   number), i.e. to 0.36 s; before rounding up to the step, a time total is
   first rounded to the nearest whole second, so 40 min sent as 0.6667 h is
   40 min and not a 41st minute. Energy is not snapped (kWh with 4 decimals
   is exact to 0.1 Wh, and "115.2 Wh ... billed for 116 Wh").
6. VAT per Price Component: incl = excl x (1 + vat/100). A component without
   ``vat`` ("no VAT is applicable", which is "different from 0% VAT") has no
   incl_vat, and neither has any total it contributes to: we do not invent
   the VAT-inclusive figure the CPO chose not to state.
7. min_price / max_price clamp total_cost, "excluding VAT" and "including VAT"
   each on its own (notes under the Tariff table). The cost breakdowns are
   not clamped, so after a clamp they need not add up to total_cost.
8. Money (mod_tariffs: "There are no parameters related to price rounding
   ... The OCPI specification stays out of these matters"): computed at 60
   significant digits and rounded once, at the end, to 4 decimals
   ("Unless mentioned otherwise, numbers use 4 decimals", types.asciidoc,
   number) with ROUND_HALF_UP. Totals are rounded from the exact sums, not
   summed from rounded lines. Rounding to cents for an invoice is the
   biller's business. Quantities are not rounded.

OCPI 2.3.0 (docs/adr/0046; mod_tariffs of tag v2.3.0). The Tariff is our
core (2.2.1) one; a 2.3.0 Tariff's ``tax_included`` is kept in it
(``schemas.ocpi.v230.mapping.tax_included_of``, NO when absent), and its
PriceLimits are its min_price / max_price (before_taxes = excl_vat,
after_taxes = incl_vat).

9. tax_included NO (every 2.2.1 Tariff): rules 6-8 unchanged. YES: a
   line's amount (billed volume x price) includes its taxes; with ``vat``
   its before-tax amount is amount / (1 + vat/100), computed at 60 digits,
   and its tax the difference; without ``vat`` no VAT applies and the
   amount is both (North American tariffs, whose sales taxes the CPO does
   not state: the total after taxes is the amount). N/A: no taxes, so a
   line without ``vat`` has incl = excl; a component that states a ``vat``
   anyway is taxed as under NO (the more specific statement wins).
10. Taxes per rate (2.3.0 Price ``taxes``): for each cost, one VAT line per
   rate used, amount = the exact sum of that rate's taxes. Rounding: the
   before-tax and after-tax totals are rounded once as in rule 8; each
   rate's amount is rounded half-up to 4 decimals and, when the after-tax
   total is known, the rounding difference (a few 0.0001 at most) goes to
   the rate with the largest exact amount, so before_taxes + taxes ==
   after_taxes exactly. When min_price / max_price clamp the total, the
   clamped tax (after - before) is shared over the rates in proportion to
   their unclamped amounts, rounded the same way (no rate used: one line
   without percentage); when the after-tax total is unknown, each rate is
   scaled by clamped / unclamped before-tax total.

Cost buckets (CDR object): total_fixed_cost = charging-phase FLAT ("except
fixed price components of parking and reservation"; 2.2.1 cannot tell a
parking FLAT from a start fee, so every charging FLAT lands here);
total_reservation_cost = reservation FLAT and reservation time ("including
fixed price components"); energy, time (charging) and parking as named.
total_time is TIME + PARKING_TIME as measured ("including the duration of
charging and not charging"), total_parking_time is PARKING_TIME.

The spec's step_size rule is not monotonic: with two ENERGY prices, moving
energy from the dearer last period to a cheaper earlier one inside the same
step can lower the bill (see the tests). We implement the rule as written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, localcontext
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.ocpi.cdrs import CdrDimension, CdrDimensionType, ChargingPeriod
from schemas.ocpi.common import fold
from schemas.ocpi.tariffs import (
    DayOfWeek,
    Price,
    PriceComponent,
    ReservationRestrictionType,
    Tariff,
    TariffDimensionType,
    TariffElement,
    TariffRestrictions,
)
from schemas.ocpi.v230.mapping import VAT, tax_included_of
from schemas.ocpi.v230.tariffs import TaxIncluded
from schemas.ocpi.v230.types import Price as PriceV230
from schemas.ocpi.v230.types import TaxAmount

_PRECISION = 60
_MONEY_QUANTUM = Decimal("0.0001")
_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_SECONDS_PER_HOUR = Decimal(3600)
_WH_PER_KWH = Decimal(1000)
_DAYS = tuple(DayOfWeek)  # Monday first, as datetime.weekday()

Dim = CdrDimensionType
Tdt = TariffDimensionType

# CDR dimension -> Tariff dimension that prices it, per phase.
_CHARGING_PRICED = {Dim.ENERGY: Tdt.ENERGY, Dim.TIME: Tdt.TIME, Dim.PARKING_TIME: Tdt.PARKING_TIME}
_RESERVATION_PRICED = {Dim.RESERVATION_TIME: Tdt.TIME}


class PricingError(ValueError):
    """The inputs cannot be priced as given (inconsistent or unsupported)."""


# --------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PricedComponent:
    """One Price Component applied in one period."""

    type: TariffDimensionType
    # The CDR dimension it priced; None for FLAT.
    dimension: CdrDimensionType | None
    # Index in ``tariff.elements`` of the Element the component came from.
    element_index: int
    price_component: PriceComponent
    # Measured volume in the dimension's unit (kWh or h; 1 for FLAT) and the
    # volume billed after step_size.
    volume: Decimal
    billed_volume: Decimal
    cost: Price  # rounded to 4 decimals


@dataclass(frozen=True, slots=True)
class PricedPeriod:
    start_date_time: datetime
    end_date_time: datetime
    dimensions: tuple[CdrDimension, ...]
    # The period's tariff_id, or the priced Tariff's id when something in the
    # period was priced by it and the period named none.
    tariff_id: str | None
    reservation: bool
    components: tuple[PricedComponent, ...]

    def to_charging_period(self) -> ChargingPeriod:
        return ChargingPeriod(
            start_date_time=self.start_date_time,
            dimensions=list(self.dimensions),
            tariff_id=self.tariff_id,
        )


@dataclass(frozen=True, slots=True)
class TaxShare:
    """The VAT of one rate in one cost, rounded (rule 10). ``percentage``
    None: a tax a price limit made that no rate of the tariff accounts for."""

    percentage: Decimal | None
    amount: Decimal


# The cost names of PricedSession that carry taxes (rule 10).
COSTS = (
    "total_cost",
    "total_fixed_cost",
    "total_energy_cost",
    "total_time_cost",
    "total_parking_cost",
    "total_reservation_cost",
)


@dataclass(frozen=True, slots=True)
class PricedSession:
    """Totals with the CDR object's names; quantities in kWh and hours.
    ``taxes`` holds, per name in ``COSTS``, the VAT lines of that cost."""

    tariff_id: str
    currency: str
    total_cost: Price
    total_fixed_cost: Price
    total_energy: Decimal
    total_energy_cost: Price
    total_time: Decimal
    total_time_cost: Price
    total_parking_time: Decimal
    total_parking_cost: Price
    total_reservation_time: Decimal
    total_reservation_cost: Price
    # Quantities billed after step_size (charging TIME only in billed_time).
    billed_energy: Decimal
    billed_time: Decimal
    billed_parking_time: Decimal
    billed_reservation_time: Decimal
    min_price_applied: bool
    max_price_applied: bool
    periods: tuple[PricedPeriod, ...]
    tax_included: TaxIncluded = TaxIncluded.NO
    taxes: dict[str, tuple[TaxShare, ...]] = field(default_factory=dict)

    def price_v230(self, cost: str) -> PriceV230:
        """One of ``COSTS`` as an OCPI 2.3.0 Price: before taxes and the
        VAT lines; no ``taxes`` when nothing about taxes is known (NO with
        components without VAT and no VAT line)."""
        price: Price = getattr(self, cost)
        shares = self.taxes.get(cost, ())
        if not shares and price.incl_vat is None:
            return PriceV230(before_taxes=price.excl_vat)
        return PriceV230(
            before_taxes=price.excl_vat,
            taxes=[
                TaxAmount(name=VAT, percentage=share.percentage, amount=share.amount)
                for share in shares
            ],
        )


# --------------------------------------------------------------------------
# Restrictions
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Moment:
    """What restrictions look at, at the start of one period."""

    local: datetime
    energy_before: Decimal  # kWh
    seconds_in_phase: Decimal
    readings: dict[CdrDimensionType, Decimal]
    reservation: frozenset[ReservationRestrictionType]  # empty in the charging phase


def _in_time_window(now: time, start: str | None, end: str | None) -> bool:
    low = time.fromisoformat(start) if start else time(0, 0)
    if end is None:
        return now >= low
    high = time.fromisoformat(end)
    if high > low:
        return low <= now < high
    if high < low:  # "wraps around to the next day"
        return now >= low or now < high
    return True  # equal: the whole day


def _reading(moment: _Moment, order: Sequence[CdrDimensionType]) -> Decimal | None:
    for dim in order:
        if dim in moment.readings:
            return moment.readings[dim]
    return None


_CURRENT_FOR_MIN = (Dim.MIN_CURRENT, Dim.CURRENT, Dim.MAX_CURRENT)
_POWER_FOR_MIN = (Dim.MIN_POWER, Dim.POWER, Dim.MAX_POWER)


def _at_least(value: Decimal | None, bound: Decimal | int | None) -> bool:
    return bound is None or (value is not None and value >= bound)


def _below(value: Decimal | None, bound: Decimal | int | None) -> bool:
    return bound is None or (value is not None and value < bound)


def _holds(restrictions: TariffRestrictions | None, moment: _Moment) -> bool:
    if restrictions is None:
        return not moment.reservation
    r = restrictions
    if r.reservation is None:
        if moment.reservation:
            return False
    elif r.reservation not in moment.reservation:
        return False
    if not _time_holds(r, moment.local, moment.seconds_in_phase):
        return False
    current_low = _reading(moment, _CURRENT_FOR_MIN)
    current_high = _reading(moment, tuple(reversed(_CURRENT_FOR_MIN)))
    power_low = _reading(moment, _POWER_FOR_MIN)
    power_high = _reading(moment, tuple(reversed(_POWER_FOR_MIN)))
    return (
        _at_least(moment.energy_before, r.min_kwh)
        and _below(moment.energy_before, r.max_kwh)
        and _at_least(current_low, r.min_current)
        and _below(current_high, r.max_current)
        and _at_least(power_low, r.min_power)
        and _below(power_high, r.max_power)
    )


def _time_holds(r: TariffRestrictions, local: datetime, seconds_in_phase: Decimal) -> bool:
    """The restrictions that depend only on the clock: time of day, date, day
    of week (all on the local wall clock) and duration in the phase."""
    if (r.start_time or r.end_time) and not _in_time_window(local.time(), r.start_time, r.end_time):
        return False
    today = local.date().isoformat()  # ISO dates order as text
    if r.start_date is not None and today < r.start_date:
        return False
    if r.end_date is not None and today >= r.end_date:
        return False
    if r.day_of_week is not None and _DAYS[local.weekday()] not in r.day_of_week:
        return False
    return _at_least(seconds_in_phase, r.min_duration) and _below(seconds_in_phase, r.max_duration)


def _find(
    candidates: Sequence[tuple[int, TariffElement]], moment: _Moment, dimension: Tdt
) -> tuple[int, PriceComponent] | None:
    for index, element in candidates:
        if not _holds(element.restrictions, moment):
            continue
        for component in element.price_components:
            if component.type is dimension:
                return index, component
    return None


def _reservation_kind(element: TariffElement) -> ReservationRestrictionType | None:
    return element.restrictions.reservation if element.restrictions else None


# --------------------------------------------------------------------------
# Money
# --------------------------------------------------------------------------


@dataclass(slots=True)
class _Sum:
    excl: Decimal = _ZERO
    incl: Decimal | None = _ZERO
    # Exact tax per VAT rate (rule 10).
    taxes: dict[Decimal, Decimal] = field(default_factory=dict)

    def add(self, excl: Decimal, incl: Decimal | None, rate: Decimal | None = None) -> None:
        self.excl += excl
        self.incl = None if self.incl is None or incl is None else self.incl + incl
        if rate is not None and incl is not None:
            self.taxes[rate] = self.taxes.get(rate, _ZERO) + (incl - excl)


def _line_money(
    amount: Decimal, vat: Decimal | None, mode: TaxIncluded
) -> tuple[Decimal, Decimal | None]:
    """(before taxes, after taxes) of a line's amount (rules 6 and 9)."""
    if mode is TaxIncluded.YES:
        if vat is None:
            return amount, amount
        return amount / (1 + vat / _HUNDRED), amount
    if mode is TaxIncluded.NOT_APPLICABLE and vat is None:
        return amount, amount
    return amount, _with_vat(amount, vat)


def _shares(
    exact: dict[Decimal, Decimal], before: Decimal, after: Decimal | None
) -> tuple[TaxShare, ...]:
    """Rule 10: each rate rounded; the rounding difference to the largest,
    so that the lines add up to after - before when after is known."""
    if not exact:
        if after is not None and after != before:
            return (TaxShare(percentage=None, amount=after - before),)
        return ()
    rates = sorted(exact, reverse=True)
    rounded = {rate: _money(exact[rate]) for rate in rates}
    if after is not None:
        largest = max(rates, key=lambda rate: (abs(exact[rate]), rate))
        rounded[largest] += (after - before) - sum(rounded.values(), _ZERO)
    return tuple(TaxShare(percentage=rate, amount=rounded[rate]) for rate in rates)


def _clamped_taxes(
    exact: dict[Decimal, Decimal],
    unclamped_before: Decimal,
    before: Decimal,
    after: Decimal | None,
) -> dict[Decimal, Decimal]:
    """The exact per-rate taxes of a total a price limit clamped (rule 10)."""
    total = sum(exact.values(), _ZERO)
    if after is not None:
        if total == 0:
            return {}
        return {rate: (after - before) * amount / total for rate, amount in exact.items()}
    if unclamped_before == 0:
        return {}
    return {rate: amount * before / unclamped_before for rate, amount in exact.items()}


def _money(value: Decimal) -> Decimal:
    return value.quantize(_MONEY_QUANTUM, rounding=ROUND_HALF_UP)


def _price(excl: Decimal, incl: Decimal | None) -> Price:
    return Price(excl_vat=_money(excl), incl_vat=None if incl is None else _money(incl))


def _with_vat(excl: Decimal, vat: Decimal | None) -> Decimal | None:
    return None if vat is None else excl * (1 + vat / _HUNDRED)


# --------------------------------------------------------------------------
# Pricing
# --------------------------------------------------------------------------


@dataclass(slots=True)
class _Line:
    period: int
    type: Tdt
    dimension: CdrDimensionType | None
    element_index: int
    component: PriceComponent
    volume: Decimal
    billed: Decimal = field(default=_ZERO)


def _round_to_step(lines: Sequence[_Line], units_per_step_unit: Decimal, snap: bool) -> None:
    """Round the billable total of one dimension up to the last line's step and
    bill the difference in that last line (mod_cdrs, "step_size")."""
    if not lines:
        return
    last = lines[-1]
    step = last.component.step_size
    if step <= 0:
        return
    exact = sum((line.volume for line in lines), _ZERO) * units_per_step_unit
    measured = exact.quantize(Decimal(1), rounding=ROUND_HALF_UP) if snap else exact
    billed = (measured / step).to_integral_value(rounding=ROUND_CEILING) * step
    extra = (billed - exact) / units_per_step_unit
    last.billed = max(_ZERO, last.volume + extra)


def _seconds(span: timedelta) -> Decimal:
    # timedelta.total_seconds() is a float; this stays exact.
    whole = span.days * 86400 + span.seconds
    return Decimal(whole) + Decimal(span.microseconds) / 1_000_000


def _zone(time_zone: str | ZoneInfo) -> ZoneInfo:
    if isinstance(time_zone, ZoneInfo):
        return time_zone
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PricingError(f"unknown time zone {time_zone!r}") from exc


def _check_inputs(
    tariff: Tariff, periods: Sequence[ChargingPeriod], start: datetime, end: datetime
) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise PricingError("start and end must be timezone-aware")
    if end < start:
        raise PricingError("the session ends before it starts")
    previous = start
    for number, period in enumerate(periods):
        moment = period.start_date_time
        if moment < previous or (number and moment == previous):
            raise PricingError("charging periods must start in order, within the session")
        previous = moment
        if period.tariff_id is not None and fold(period.tariff_id) != fold(tariff.id):
            raise PricingError(
                f"period {number} is for tariff {period.tariff_id!r}, not {tariff.id!r}"
            )
        types = [dimension.type for dimension in period.dimensions]
        if len(types) != len(set(types)):
            raise PricingError(f"period {number} lists a dimension twice")
    if periods and periods[-1].start_date_time > end:
        raise PricingError("a charging period starts after the session ends")


def tariff_active_at(tariff: Tariff, instant: datetime) -> bool:
    """Tariff.start_date_time (inclusive) and end_date_time ("after which this
    tariff is no longer valid") around ``instant``."""
    if tariff.start_date_time is not None and instant < tariff.start_date_time:
        return False
    return tariff.end_date_time is None or instant <= tariff.end_date_time


def price_session(
    tariff: Tariff,
    periods: Sequence[ChargingPeriod],
    *,
    start: datetime,
    end: datetime,
    time_zone: str | ZoneInfo,
    reservation_expired: bool = False,
) -> PricedSession:
    """Price one session. ``reservation_expired``: the session is a
    reservation that expired without charging (RESERVATION_EXPIRES applies)."""
    _check_inputs(tariff, periods, start, end)
    zone = _zone(time_zone)
    with localcontext() as context:
        context.prec = _PRECISION
        return _price_in_context(tariff, periods, start, end, zone, reservation_expired)


def _price_in_context(
    tariff: Tariff,
    periods: Sequence[ChargingPeriod],
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    reservation_expired: bool,
) -> PricedSession:
    readings = [{d.type: d.volume for d in period.dimensions} for period in periods]
    is_reservation = [Dim.RESERVATION_TIME in r for r in readings]
    for number, (reading, reserved) in enumerate(zip(readings, is_reservation, strict=True)):
        used = [d for d in _CHARGING_PRICED if reading.get(d, _ZERO) != 0]
        if reserved and used:
            raise PricingError(f"period {number} mixes reservation time with {used}")
        if reading.get(Dim.ENERGY, _ZERO) < 0:
            raise PricingError("negative ENERGY (to the grid) has no price in a 2.2.1 Tariff")
    if reservation_expired and (not any(is_reservation) or not all(is_reservation)):
        raise PricingError("an expired reservation has reservation periods and nothing else")

    indexed = list(enumerate(tariff.elements))
    charging_candidates = [(i, e) for i, e in indexed if _reservation_kind(e) is None]
    booked = [
        (i, e) for i, e in indexed if _reservation_kind(e) is ReservationRestrictionType.RESERVATION
    ]
    expired = [
        (i, e)
        for i, e in indexed
        if _reservation_kind(e) is ReservationRestrictionType.RESERVATION_EXPIRES
    ]
    reservation_candidates = expired + booked if reservation_expired else booked
    reservation_kinds = frozenset(
        {ReservationRestrictionType.RESERVATION}
        | ({ReservationRestrictionType.RESERVATION_EXPIRES} if reservation_expired else set())
    )
    charging_origin = _charging_origin(periods, is_reservation, start)

    lines: list[_Line] = []
    flat_found = {False: False, True: False}  # per phase: reservation?
    energy_before = _ZERO
    for number, period in enumerate(periods):
        reserved = is_reservation[number]
        origin = start if reserved else charging_origin
        moment = _Moment(
            local=period.start_date_time.astimezone(zone),
            energy_before=energy_before,
            seconds_in_phase=_seconds(period.start_date_time - origin),
            readings=readings[number],
            reservation=reservation_kinds if reserved else frozenset(),
        )
        candidates = reservation_candidates if reserved else charging_candidates
        if not flat_found[reserved]:
            hit = _find(candidates, moment, Tdt.FLAT)
            if hit is not None:
                flat_found[reserved] = True
                lines.append(_Line(number, Tdt.FLAT, None, hit[0], hit[1], Decimal(1)))
        priced = _RESERVATION_PRICED if reserved else _CHARGING_PRICED
        for dimension, tariff_dimension in priced.items():
            volume = readings[number].get(dimension, _ZERO)
            if volume == 0:
                continue
            hit = _find(candidates, moment, tariff_dimension)
            if hit is not None:
                lines.append(_Line(number, tariff_dimension, dimension, hit[0], hit[1], volume))
        energy_before += readings[number].get(Dim.ENERGY, _ZERO)

    for line in lines:
        line.billed = line.volume
    _apply_step_sizes(lines)
    return _assemble(tariff, periods, end, readings, is_reservation, lines)


def _charging_origin(
    periods: Sequence[ChargingPeriod], is_reservation: Sequence[bool], start: datetime
) -> datetime:
    """Where min_duration / max_duration of the charging phase count from: the
    first charging period's start after a reservation, else the session's
    start. The reservation phase counts from the session's start."""
    first_charging = next(
        (p.start_date_time for p, r in zip(periods, is_reservation, strict=True) if not r), start
    )
    return first_charging if any(is_reservation) else start


def _apply_step_sizes(lines: list[_Line]) -> None:
    def of(dimension: CdrDimensionType | None) -> list[_Line]:
        return [line for line in lines if line.dimension is dimension]

    _round_to_step(of(Dim.ENERGY), _WH_PER_KWH, snap=False)
    _round_to_step(of(Dim.RESERVATION_TIME), _SECONDS_PER_HOUR, snap=True)
    timed = [line for line in lines if line.dimension in (Dim.TIME, Dim.PARKING_TIME)]
    if timed:
        # Lines are in period order and, within a period, TIME before
        # PARKING_TIME (the dict order of _CHARGING_PRICED), so the last line
        # is the last time-based period.
        _round_to_step(of(timed[-1].dimension), _SECONDS_PER_HOUR, snap=True)


def _bucket(line: _Line, reserved: bool) -> str:
    if reserved:
        return "reservation"
    return {
        Tdt.FLAT: "fixed",
        Tdt.ENERGY: "energy",
        Tdt.TIME: "time",
        Tdt.PARKING_TIME: "parking",
    }[line.type]


def _total(readings: Iterable[dict[CdrDimensionType, Decimal]], dim: CdrDimensionType) -> Decimal:
    return sum((r.get(dim, _ZERO) for r in readings), _ZERO)


def _assemble(
    tariff: Tariff,
    periods: Sequence[ChargingPeriod],
    end: datetime,
    readings: list[dict[CdrDimensionType, Decimal]],
    is_reservation: list[bool],
    lines: list[_Line],
) -> PricedSession:
    mode = tax_included_of(tariff)
    buckets = {name: _Sum() for name in ("fixed", "energy", "time", "parking", "reservation")}
    total = _Sum()
    per_period: list[list[PricedComponent]] = [[] for _ in periods]
    billed = dict.fromkeys(Dim, _ZERO)
    for line in lines:
        excl, incl = _line_money(line.billed * line.component.price, line.component.vat, mode)
        rate = line.component.vat
        buckets[_bucket(line, is_reservation[line.period])].add(excl, incl, rate)
        total.add(excl, incl, rate)
        if line.dimension is not None:
            billed[line.dimension] += line.billed
        per_period[line.period].append(
            PricedComponent(
                type=line.type,
                dimension=line.dimension,
                element_index=line.element_index,
                price_component=line.component,
                volume=line.volume,
                billed_volume=line.billed,
                cost=_price(excl, incl),
            )
        )

    excl, incl = total.excl, total.incl
    low, high = tariff.min_price, tariff.max_price
    min_applied = max_applied = False
    if low is not None:
        if excl < low.excl_vat:
            excl, min_applied = low.excl_vat, True
        if incl is not None and low.incl_vat is not None and incl < low.incl_vat:
            incl, min_applied = low.incl_vat, True
    if high is not None:
        if excl > high.excl_vat:
            excl, max_applied = high.excl_vat, True
        if incl is not None and high.incl_vat is not None and incl > high.incl_vat:
            incl, max_applied = high.incl_vat, True

    ends = [p.start_date_time for p in periods[1:]] + [end]
    priced_periods = tuple(
        PricedPeriod(
            start_date_time=period.start_date_time,
            end_date_time=period_end,
            dimensions=tuple(period.dimensions),
            tariff_id=period.tariff_id or (tariff.id if components else None),
            reservation=is_reservation[number],
            components=tuple(components),
        )
        for number, (period, period_end, components) in enumerate(
            zip(periods, ends, per_period, strict=True)
        )
    )

    def bucket(name: str) -> Price:
        return _price(buckets[name].excl, buckets[name].incl)

    def taxes_of(amounts: _Sum) -> tuple[TaxShare, ...]:
        incl_rounded = None if amounts.incl is None else _money(amounts.incl)
        return _shares(amounts.taxes, _money(amounts.excl), incl_rounded)

    total_taxes = total.taxes
    if min_applied or max_applied:
        total_taxes = _clamped_taxes(total.taxes, total.excl, excl, incl)
    taxes = {
        "total_cost": taxes_of(_Sum(excl=excl, incl=incl, taxes=total_taxes)),
        "total_fixed_cost": taxes_of(buckets["fixed"]),
        "total_energy_cost": taxes_of(buckets["energy"]),
        "total_time_cost": taxes_of(buckets["time"]),
        "total_parking_cost": taxes_of(buckets["parking"]),
        "total_reservation_cost": taxes_of(buckets["reservation"]),
    }

    return PricedSession(
        tariff_id=tariff.id,
        currency=tariff.currency,
        total_cost=_price(excl, incl),
        total_fixed_cost=bucket("fixed"),
        total_energy=_total(readings, Dim.ENERGY),
        total_energy_cost=bucket("energy"),
        total_time=_total(readings, Dim.TIME) + _total(readings, Dim.PARKING_TIME),
        total_time_cost=bucket("time"),
        total_parking_time=_total(readings, Dim.PARKING_TIME),
        total_parking_cost=bucket("parking"),
        total_reservation_time=_total(readings, Dim.RESERVATION_TIME),
        total_reservation_cost=bucket("reservation"),
        billed_energy=billed[Dim.ENERGY],
        billed_time=billed[Dim.TIME],
        billed_parking_time=billed[Dim.PARKING_TIME],
        billed_reservation_time=billed[Dim.RESERVATION_TIME],
        min_price_applied=min_applied,
        max_price_applied=max_applied,
        periods=priced_periods,
        tax_included=mode,
        taxes=taxes,
    )


# --------------------------------------------------------------------------
# Cutting periods where a time-based restriction changes
# --------------------------------------------------------------------------

# Dimensions that are amounts accrued over the period, shared between its
# pieces; every other dimension is a reading and is copied to each piece.
_SHARED = frozenset({Dim.ENERGY, Dim.TIME, Dim.PARKING_TIME, Dim.RESERVATION_TIME})
_SHARE_QUANTUM_EXPONENT = -4  # 4 decimals, or finer if the volume has more
_TRANSITION_SCAN = timedelta(hours=6)  # no zone changes its offset twice in 6 h
_ONE_MICROSECOND = timedelta(microseconds=1)
_ONE_DAY = timedelta(days=1)


def split_at_tariff_boundaries(
    tariff: Tariff,
    periods: Sequence[ChargingPeriod],
    *,
    start: datetime,
    end: datetime,
    time_zone: str | ZoneInfo,
) -> list[ChargingPeriod]:
    """Cut each period at every instant inside it where a time-based
    restriction of a Tariff Element that can price it changes from holding to
    not holding or back, so that ``price_session``, which reads restrictions
    at each period's start, prices each piece by what held during it.

    A CPO is meant to start a new period itself whenever the price changes;
    our own sessions are cut per meter interval, so an interval crossing e.g.
    a 23:00 night rate would otherwise be priced whole at its start's rate.

    Time-based restrictions are those ``_time_holds`` reads: start_time and
    end_time (wrapping past midnight, and the wall clock's return to 00:00),
    start_date, end_date and day_of_week (local midnight), all on the
    Location's wall clock, found by converting instants with zoneinfo so DST
    changes are exact (including a wall clock that jumps over, or repeats,
    a restriction's time); and min_duration / max_duration, counted as the
    engine counts them: the reservation phase from the session's start, the
    charging phase from its first period after a reservation (else from the
    session's start). Only Elements of the period's phase are looked at
    (reservation Elements for reservation periods, the others for charging
    periods). A cut is made only where the combined time-based truth of at
    least one such Element changes.

    kWh thresholds (min_kwh / max_kwh) are not cut at: how the energy of a
    period was spread over it is not known, so where inside it a threshold
    was crossed is not known either. Note that the pieces of a period share
    its energy in proportion to their duration, so the engine's energy
    charged before a later piece is that proportional estimate.

    ENERGY, TIME, PARKING_TIME and RESERVATION_TIME are shared between the
    pieces in proportion to their duration, rounded to 4 decimals (or to the
    volume's own decimals if it has more) on the running total, so that the
    last piece takes the remainder and the pieces add up to the period's
    volume digit for digit. Other dimensions are copied to every piece, as is
    ``tariff_id``. A period with no cut inside it is returned as it was; a
    Tariff without time-based restrictions changes nothing. No floats."""
    _check_inputs(tariff, periods, start, end)
    zone = _zone(time_zone)
    is_reservation = [any(d.type is Dim.RESERVATION_TIME for d in p.dimensions) for p in periods]
    charging_origin = _charging_origin(periods, is_reservation, start)
    timed = [
        (e.restrictions.reservation is not None, e.restrictions)
        for e in tariff.elements
        if e.restrictions is not None and _is_time_based(e.restrictions)
    ]
    if not timed:
        return list(periods)
    ends = [p.start_date_time for p in periods[1:]] + [end]
    result: list[ChargingPeriod] = []
    with localcontext() as context:
        context.prec = _PRECISION
        for period, period_end, reserved in zip(periods, ends, is_reservation, strict=True):
            restrictions = [r for phase, r in timed if phase == reserved]
            origin = start if reserved else charging_origin
            cuts = _cuts(restrictions, period.start_date_time, period_end, origin, zone)
            result.extend(_pieces(period, period_end, cuts) if cuts else [period])
    return result


def _is_time_based(r: TariffRestrictions) -> bool:
    return any(
        value is not None
        for value in (
            r.start_time,
            r.end_time,
            r.start_date,
            r.end_date,
            r.day_of_week,
            r.min_duration,
            r.max_duration,
        )
    )


def _utc(instant: datetime) -> datetime:
    # Aware datetimes that share a tzinfo compare by wall clock, ignoring the
    # fold; in UTC every comparison is between instants.
    return instant.astimezone(UTC)


def _offset_changes(low: datetime, high: datetime, zone: ZoneInfo) -> list[datetime]:
    """The instants in (low, high] where the zone's UTC offset changes, to the
    microsecond: where the wall clock jumps forward or back."""

    def offset(at: datetime) -> timedelta | None:
        return at.astimezone(zone).utcoffset()

    found: list[datetime] = []
    here = low
    while here < high:
        there = min(here + _TRANSITION_SCAN, high)
        if offset(here) != offset(there):
            before, after = here, there  # offset(before) != offset(after)
            while after - before > _ONE_MICROSECOND:
                middle = before + (after - before) // 2
                if offset(middle) == offset(before):
                    before = middle
                else:
                    after = middle
            found.append(after)
        here = there
    return found


def _candidates(
    restrictions: Sequence[TariffRestrictions],
    low: datetime,
    high: datetime,
    origin: datetime,
    zone: ZoneInfo,
) -> set[datetime]:
    """Instants (UTC) that include every one where a time-based restriction
    can change; more is harmless, ``_cuts`` keeps the real changes."""
    found: set[datetime] = set()
    times: set[time] = set()
    for r in restrictions:
        for text in (r.start_time, r.end_time):
            if text:
                times.add(time.fromisoformat(text))
        clocked = r.start_time or r.end_time
        if clocked or r.start_date or r.end_date or r.day_of_week is not None:
            times.add(time(0, 0))  # a new day (and the end of a window open to midnight)
        for seconds in (r.min_duration, r.max_duration):
            if seconds is not None:
                found.add(_utc(origin) + timedelta(seconds=seconds))
    if times:
        found.update(_offset_changes(low, high, zone))
        day = low.astimezone(zone).date() - _ONE_DAY
        last_day = high.astimezone(zone).date() + _ONE_DAY
        while day <= last_day:
            for clock in times:
                for fold in (0, 1):  # a repeated wall time happens twice
                    wall = datetime.combine(day, clock, tzinfo=zone).replace(fold=fold)
                    found.add(_utc(wall))
            day += _ONE_DAY
    return found


def _signature(
    restrictions: Sequence[TariffRestrictions], at: datetime, origin: datetime, zone: ZoneInfo
) -> tuple[bool, ...]:
    local = at.astimezone(zone)
    seconds = _seconds(at - origin)
    return tuple(_time_holds(r, local, seconds) for r in restrictions)


def _cuts(
    restrictions: Sequence[TariffRestrictions],
    period_start: datetime,
    period_end: datetime,
    origin: datetime,
    zone: ZoneInfo,
) -> list[datetime]:
    """The instants strictly inside the period where some Element's time-based
    truth changes. Between two consecutive candidates the truth is constant,
    so comparing each candidate with the one before finds every change."""
    if not restrictions:
        return []
    low, high, origin = _utc(period_start), _utc(period_end), _utc(origin)
    # A ChargingPeriod keeps its start to the millisecond, so a cut between two
    # milliseconds goes to the later one: its piece must not start before it.
    found = {_ceil_ms(c) for c in _candidates(restrictions, low, high, origin, zone)}
    inside = sorted(c for c in found if low < c < high)
    cuts: list[datetime] = []
    previous = _signature(restrictions, low, origin, zone)
    for candidate in inside:
        current = _signature(restrictions, candidate, origin, zone)
        if current != previous:
            cuts.append(candidate)
        previous = current
    return cuts


def _ceil_ms(instant: datetime) -> datetime:
    below = instant.microsecond % 1000
    return instant + timedelta(microseconds=1000 - below) if below else instant


def _microseconds(span: timedelta) -> int:
    return (span.days * 86400 + span.seconds) * 1_000_000 + span.microseconds


def _pieces(
    period: ChargingPeriod, period_end: datetime, cuts: Sequence[datetime]
) -> list[ChargingPeriod]:
    starts = [period.start_date_time, *cuts]
    total = _microseconds(period_end - period.start_date_time)
    elapsed = [Decimal(_microseconds(cut - period.start_date_time)) for cut in cuts]
    shares: dict[CdrDimensionType, list[Decimal]] = {}
    for dimension in period.dimensions:
        if dimension.type not in _SHARED:
            continue
        volume = dimension.volume
        exponent = volume.as_tuple().exponent
        finest = exponent if isinstance(exponent, int) else 0
        quantum = Decimal(1).scaleb(min(finest, _SHARE_QUANTUM_EXPONENT))
        # Round the running total, not each share: the shares then add up to
        # the volume exactly and none has the opposite sign of the volume.
        running = [
            (volume * part / total).quantize(quantum, rounding=ROUND_HALF_UP) for part in elapsed
        ]
        bounds = [_ZERO, *running, volume]
        shares[dimension.type] = [b - a for a, b in pairwise(bounds)]
    pieces = []
    for number, piece_start in enumerate(starts):
        dimensions = [
            CdrDimension(type=d.type, volume=shares[d.type][number]) if d.type in shares else d
            for d in period.dimensions
        ]
        pieces.append(
            ChargingPeriod(
                start_date_time=piece_start, dimensions=dimensions, tariff_id=period.tariff_id
            )
        )
    return pieces
