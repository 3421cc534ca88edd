"""CDRs, pure core (mod_cdrs): building ours, crediting ours, receiving and
reconciling partners'. No I/O, no clock; the shells pass in what they read.

As CPO:

* ``build_cdr`` turns one of OUR completed sessions into a priced CDR. The
  caller hands in the Location (its time zone prices the session, a
  CdrLocation has none) and the connector's tariffs *as they were at session
  start* (docs/adr/0016). The first of the connector's ``tariff_ids`` that
  was held then and active at the session's start prices it with
  ``producers.pricing.price_session``, after its periods are cut where a
  time-based restriction of that tariff changes
  (``producers.pricing.split_at_tariff_boundaries``). No tariff at all (none referenced,
  or every referenced id unknown at session start): the CDR is still issued,
  costing nothing, with no ``tariffs`` and a ``remark`` saying why (the spec
  makes ``tariffs`` optional; holding a completed session back forever would
  leave it unbilled and unseen, a zero CDR is visible and can be credited
  and re-issued). The CDR id is the session id, so one session never gets
  two CDRs; the event id is derived from the completing session event.
* ``plan_issue`` wraps it in a ``CdrIssued``.
* ``plan_credit`` issues the Credit CDR of one of our CDRs: the same data,
  ``total_cost`` negated (mod_cdrs, "Credit CDRs": only ``total_cost`` holds
  the negative amounts), ``credit: true``, ``credit_reference_id`` the
  original's id, id ``<original>-C``. The original is never edited.

As eMSP:

* ``plan_receive`` judges a partner's POSTed CDR: valid, owned by the
  poster, not a duplicate (CDRs are immutable), and returns ``CdrReceived``.
* ``reconcile`` recomputes its cost from the tariff we hold for that CPO
  (else the one embedded in the CDR) and compares it with ``total_cost``.

Through the write path (docs/adr/0022), keyed by the CDR key:
``decide_receive`` records a received CDR with its reconciliation (both
events under the CDR's key), ``decide_credit`` a Credit CDR under the
Credit CDR's own key, so two credits of one CDR are decided one after the
other and the second finds the first. ``CdrState``/``evolve`` is what those
decisions need of a key; the MongoDB view folds with the same ``evolve``.
Our own CDRs are issued by the CDR builder (processors/), not here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from producers.pricing import (
    COSTS,
    PricedSession,
    PricingError,
    price_session,
    split_at_tariff_boundaries,
    tariff_active_at,
)
from producers.write_path import Decision, Origin, RefusedError, Slice
from schemas.events import (
    CdrIssued,
    CdrReceived,
    CdrReconciled,
    Party,
    derived_event_id,
    new_event_id,
)
from schemas.events.cdrs import (
    CdrIssuedPayload,
    CdrReceivedPayload,
    CdrReconciledPayload,
    CdrRef,
    cdr_key,
)
from schemas.events.tokens import token_key
from schemas.ocpi.cdrs import (
    NORMAL_CDR_ID_MAX,
    Cdr,
    CdrDimension,
    CdrDimensionType,
    CdrLocation,
    ChargingPeriod,
)
from schemas.ocpi.common import fold, parse_ocpi_datetime
from schemas.ocpi.locations import Connector, Evse, Location
from schemas.ocpi.sessions import Session, SessionStatus
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.tariffs import Price, Tariff, exact_numbers
from schemas.ocpi.types import to_json
from schemas.ocpi.v230.mapping import TAXES, price_out, single_vat_rate
from schemas.topics import CDRS

Json = dict[str, Any]

CREDIT_SUFFIX = "-C"
_ZERO = Decimal(0)
# types.asciidoc, number: "numbers use 4 decimals" (docs/adr/0039 §3).
_VOLUME_QUANTUM = Decimal("0.0001")
# A CdrLocation has no time zone (OCPI issue #517): when we do not hold the
# CPO's Location, reconciliation prices in UTC and says so.
FALLBACK_TIME_ZONE = "UTC"


class BuildError(ValueError):
    """The CDR cannot be built from what is held (no such location or connector)."""


# --------------------------------------------------------------------------- #
# As CPO: building our CDR
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class BuiltCdr:
    cdr: Json  # the OCPI CDR, JSON form
    tariff_source: Literal["tariff", "none"]


def _connector(location: Location, evse_uid: str, connector_id: str) -> tuple[Evse, Connector]:
    for evse in location.evses or ():
        if fold(evse.uid) != fold(evse_uid):
            continue
        for connector in evse.connectors:
            if fold(connector.id) == fold(connector_id):
                return evse, connector
    raise BuildError(f"location {location.id!r} has no connector {evse_uid!r}/{connector_id!r}")


def cdr_location(location: Location, evse_uid: str, connector_id: str) -> CdrLocation:
    """The CdrLocation of a session: the Location with only the EVSE and
    connector used. An EVSE without ``evse_id`` (optional on an EVSE,
    required on a CdrLocation) is named by its ``uid``."""
    evse, connector = _connector(location, evse_uid, connector_id)
    return CdrLocation(
        id=location.id,
        name=location.name,
        address=location.address,
        city=location.city,
        postal_code=location.postal_code,
        state=location.state,
        country=location.country,
        coordinates=location.coordinates,
        evse_uid=evse.uid,
        evse_id=evse.evse_id or evse.uid,
        connector_id=connector.id,
        connector_standard=connector.standard,
        connector_format=connector.format,
        connector_power_type=connector.power_type,
    )


def connector_tariff_ids(location: Json, evse_uid: str, connector_id: str) -> list[str]:
    """The ``tariff_ids`` of the connector a session used (empty if none)."""
    _, connector = _connector(Location.model_validate(location), evse_uid, connector_id)
    return list(connector.tariff_ids or [])


def _volume(value: Decimal) -> Decimal:
    """A quantity at 4 decimals, half-up, in plain form (no exponent)."""
    rounded = value.quantize(_VOLUME_QUANTUM, rounding=ROUND_HALF_UP)
    return Decimal(format(rounded.normalize(), "f"))


def _hours(start: datetime, end: datetime) -> Decimal:
    seconds = Decimal(int((end - start).total_seconds()))
    return _volume(seconds / Decimal(3600))


def _four_decimals(period: ChargingPeriod) -> ChargingPeriod:
    # Our sessions publish their volumes at 4 decimals already (processors/
    # session_lifecycle.py), so this changes nothing for them; a session
    # recorded before that rule carried 6. Totals are then exact sums.
    dimensions = [d.model_copy(update={"volume": _volume(d.volume)}) for d in period.dimensions]
    return period.model_copy(update={"dimensions": dimensions})


def cdr_start(session_json: Json) -> datetime:
    """When a session's CDR starts: the session's start or, for a session
    that began with a reservation, the reservation's start (mod_cdrs, CDR
    ``start_date_time``: "in-case of a reservation (before the start of a
    session) the start of the reservation"). The session's own start is
    when it went ACTIVE (mod_sessions), after its reservation period. The
    tariffs and location of the CDR are those held at this moment."""
    periods = session_json.get("charging_periods") or []
    return min(
        parse_ocpi_datetime(moment)
        for moment in [session_json["start_date_time"], *(p["start_date_time"] for p in periods)]
    )


def _periods(session: Session, end: datetime) -> list[ChargingPeriod]:
    """The session's periods, volumes at 4 decimals; a session that reported
    none gets one, from its start, with its energy and duration (a CDR has
    at least one)."""
    if session.charging_periods:
        return [_four_decimals(p) for p in session.charging_periods]
    return [
        ChargingPeriod(
            start_date_time=session.start_date_time,
            dimensions=[
                CdrDimension(type=CdrDimensionType.ENERGY, volume=_volume(session.kwh)),
                CdrDimension(
                    type=CdrDimensionType.TIME, volume=_hours(session.start_date_time, end)
                ),
            ],
        )
    ]


def _sum(periods: Sequence[ChargingPeriod], *types: CdrDimensionType) -> Decimal:
    return sum(
        (d.volume for p in periods for d in p.dimensions if d.type in types),
        _ZERO,
    )


def choose_tariff(
    tariff_ids: Sequence[str], at_start: Mapping[str, Json | None], start: datetime
) -> Tariff | None:
    """The first referenced tariff that we held at session start and that
    was active then (Tariff.start_date_time / end_date_time)."""
    for tariff_id in tariff_ids:
        held = at_start.get(fold(tariff_id))
        if held is None:
            continue
        tariff = Tariff.model_validate(held)
        if tariff_active_at(tariff, start):
            return tariff
    return None


def build_cdr(
    session_json: Json,
    location_json: Json,
    tariffs_at_start: Mapping[str, Json | None],
    *,
    issued_at: datetime,
    invoice_reference_id: str | None = None,
) -> BuiltCdr:
    """The priced CDR of one of our COMPLETED sessions.

    ``tariffs_at_start``: folded tariff id -> the Tariff (JSON) we held at
    the session's start, None when we held none then. Raises ``BuildError``
    for a session that is not COMPLETED or a connector the location lacks,
    ``PricingError`` when the session cannot be priced as given."""
    session = Session.model_validate(session_json)
    if session.status is not SessionStatus.COMPLETED:
        raise BuildError(f"session {session.id!r} is {session.status}, not COMPLETED")
    location = Location.model_validate(location_json)
    where = cdr_location(location, session.evse_uid, session.connector_id)
    _, connector = _connector(location, session.evse_uid, session.connector_id)
    end = session.end_date_time or session.last_updated
    periods = _periods(session, end)
    start = cdr_start(session_json)
    referenced = list(connector.tariff_ids or [])
    tariff = choose_tariff(referenced, tariffs_at_start, start)
    body: Json = {
        "country_code": session.country_code,
        "party_id": session.party_id,
        "id": session.id,
        "start_date_time": start,
        "end_date_time": end,
        "session_id": session.id,
        "cdr_token": session.cdr_token,
        "auth_method": session.auth_method,
        "authorization_reference": session.authorization_reference,
        "cdr_location": where,
        "meter_id": session.meter_id,
        "last_updated": issued_at,
    }
    if invoice_reference_id is not None:
        # A terminal payment whose invoice is ours (docs/adr/0047).
        body["invoice_reference_id"] = invoice_reference_id
    if tariff is None:
        why = (
            "the connector references no tariff"
            if not referenced
            else f"no tariff of {sorted(referenced)} was held and active at session start"
        )
        body |= {
            "currency": session.currency,
            "charging_periods": periods,
            "total_cost": Price(excl_vat=_ZERO),
            "total_energy": _sum(periods, CdrDimensionType.ENERGY),
            "total_time": _sum(periods, CdrDimensionType.TIME, CdrDimensionType.PARKING_TIME),
            "total_parking_time": _sum(periods, CdrDimensionType.PARKING_TIME),
            "remark": f"Not priced: {why}.",
        }
        return BuiltCdr(cdr=to_json(Cdr.model_validate(body)), tariff_source="none")
    # Our periods follow the meter, not the tariff: cut them where a
    # time-based restriction changes so each piece is priced by its own rate.
    periods = split_at_tariff_boundaries(
        tariff, periods, start=start, end=end, time_zone=location.time_zone
    )
    priced = price_session(tariff, periods, start=start, end=end, time_zone=location.time_zone)
    body |= {
        "currency": tariff.currency,
        "tariffs": [tariff],
        "charging_periods": [p.to_charging_period() for p in priced.periods],
        "total_energy": priced.total_energy,
        "total_time": priced.total_time,
        "total_parking_time": priced.total_parking_time,
    }
    body |= {cost: _with_taxes(priced, cost, tariff) for cost in COSTS}
    return BuiltCdr(cdr=to_json(Cdr.model_validate(body)), tariff_source="tariff")


def _with_taxes(priced: PricedSession, cost: str, tariff: Tariff) -> Price | Json:
    """One cost of the CDR, with our pricing's 2.3.0 tax lines (rule 10 of
    producers/pricing.py) kept as ``taxes`` where the one VAT line a 2.3.0
    partner would otherwise be sent (derived from excl and incl, with the
    tariff's VAT rate when all its components state one) would not say the
    same: several rates, or a rate not every component states
    (docs/adr/0046, schemas/ocpi/v230/mapping.py). 2.2.1 partners see it as
    an unknown field."""
    price: Price = getattr(priced, cost)
    if price.incl_vat is None:
        return price
    ours = [t for t in priced.price_v230(cost).taxes or [] if t.amount]
    derived = price_out(exact_numbers(to_json(price)), single_vat_rate([tariff]))
    said = [(t.get("percentage"), t["amount"]) for t in derived.get(TAXES) or [] if t["amount"]]
    if said == [(t.percentage, t.amount) for t in ours]:
        return price  # the derived line says it (zero amounts aside)
    return {**to_json(price), TAXES: [to_json(t) for t in ours]}


TariffSource = Literal["tariff", "none", "credit"]


def _issued(cdr: Json, meta: Json, session_key: str | None, source: TariffSource) -> CdrIssued:
    return CdrIssued(
        **meta,
        payload=CdrIssuedPayload(
            country_code=cdr["country_code"],
            party_id=cdr["party_id"],
            cdr_id=cdr["id"],
            cdr=cdr,
            session_key=session_key,
            tariff_source=source,
        ),
    )


def plan_issue(
    session_json: Json,
    location_json: Json,
    tariffs_at_start: Mapping[str, Json | None],
    *,
    cause_event_id: UUID,
    correlation_id: str,
    now: datetime,
    issued_at: datetime | None = None,
    invoice_reference_id: str | None = None,
) -> CdrIssued:
    """The ``CdrIssued`` for one of our completed sessions; its event id is
    derived from the session event that completed it, so processing that
    event again issues the same event (and the CDR id is the session id).
    ``issued_at`` (the CDR's ``last_updated``; default ``now``): the builder
    passes the completing event's ``recorded_at``, so the CDR issued again
    is the same CDR, byte for byte. ``invoice_reference_id``: the invoice
    of a terminal payment (producers/payments.py)."""
    built = build_cdr(
        session_json,
        location_json,
        tariffs_at_start,
        issued_at=issued_at or now,
        invoice_reference_id=invoice_reference_id,
    )
    cdr = built.cdr
    key = cdr_key(cdr["country_code"], cdr["party_id"], cdr["id"])
    meta: Json = {
        "event_id": derived_event_id(cause_event_id, f"CdrIssued:{key}"),
        "aggregate_key": key,
        "occurred_at": parse_ocpi_datetime(cdr["end_date_time"]),
        "recorded_at": now,
        "source": Party(country_code=fold(cdr["country_code"]), party_id=fold(cdr["party_id"])),
        "correlation_id": correlation_id,
        "causation_id": cause_event_id,
    }
    session_key = "/".join(fold(x) for x in (cdr["country_code"], cdr["party_id"], cdr["id"]))
    return _issued(cdr, meta, session_key, built.tariff_source)


def _negated(price: Json) -> Json:
    held = Price.model_validate(price)
    incl = None if held.incl_vat is None else -held.incl_vat
    return to_json(Price(excl_vat=-held.excl_vat, incl_vat=incl))


def credit_of(original: Json, *, now: datetime) -> Json:
    """The Credit CDR of ``original`` (JSON form), see the module docstring."""
    cdr = Cdr.model_validate(original)
    if cdr.credit:
        raise RefusedError(OcpiStatus.INVALID_PARAMETERS, "a Credit CDR cannot be credited")
    credit = dict(original)
    credit |= {
        "id": credit_id(cdr.id),
        "total_cost": _negated(original["total_cost"]),
        "credit": True,
        "credit_reference_id": cdr.id,
        "last_updated": now,
    }
    return to_json(Cdr.model_validate(credit))


def credit_id(cdr_id: str) -> str:
    """The id of the Credit CDR of our CDR ``cdr_id``."""
    return cdr_id[:NORMAL_CDR_ID_MAX] + CREDIT_SUFFIX


def plan_credit(
    original: Json | None,
    credited: bool,
    *,
    us: Party,
    cdr_id: str,
    origin: Origin,
    event_id: UUID,
    now: datetime,
) -> CdrIssued:
    """Credit one of our CDRs. Refused (HTTP 404, 2001) when we hold no such
    CDR of ours; refused (2001) when it was ``credited`` already."""
    if original is None:
        raise RefusedError(OcpiStatus.INVALID_PARAMETERS, f"we issued no CDR {cdr_id!r}", 404)
    if credited:
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS, f"CDR {cdr_id!r} has been credited already"
        )
    credit = credit_of(original, now=now)
    key = cdr_key(credit["country_code"], credit["party_id"], credit["id"])
    meta: Json = {
        "event_id": event_id,
        "aggregate_key": key,
        "occurred_at": now,
        "recorded_at": now,
        "source": us,
        "correlation_id": origin.correlation_id,
    }
    return _issued(credit, meta, None, "credit")


# --------------------------------------------------------------------------- #
# As eMSP: receiving and reconciling a partner's CDR
# --------------------------------------------------------------------------- #


def plan_receive(
    body: Any,
    *,
    poster_owns: Callable[[str, str], bool],
    already_held: Callable[[str], bool],
    us: Party,
    token_held: Callable[[str], bool],
    tariff_held: Callable[[str], bool],
    origin: Origin,
    event_id: UUID,
    now: datetime,
) -> CdrReceived:
    """Judge a POSTed CDR. ``poster_owns(cc, pid) -> bool``: the CDR's party
    is one of the poster's; ``already_held(key) -> bool``: a CDR with that
    key is on record (CDRs are immutable: a second one is refused);
    ``token_held(token key)``: we issued that token; ``tariff_held(id)``: we
    hold that tariff of the CDR's party. Raises ``pydantic.ValidationError``
    (2001) or ``RefusedError``; nothing is written.

    The CDR's location need not be one we hold: "CDRs may be sent for
    charging locations that have not been published" (mod_cdrs)."""
    cdr = Cdr.model_validate(body)
    if not poster_owns(cdr.country_code, cdr.party_id):
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS,
            f"{cdr.country_code}/{cdr.party_id} is not a party registered with this token; "
            "a partner may only post its own CDRs",
        )
    key = cdr_key(cdr.country_code, cdr.party_id, cdr.id)
    if already_held(key):
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS,
            f"CDR {cdr.id!r} was received before; CDRs cannot be changed, send a Credit CDR",
        )
    token = cdr.cdr_token
    if (fold(token.country_code), fold(token.party_id)) != (
        fold(us.country_code),
        fold(us.party_id),
    ):
        raise RefusedError(
            OcpiStatus.INVALID_PARAMETERS,
            f"the CDR's token belongs to {token.country_code}/{token.party_id}, not to us: "
            "send it to the eMSP that owns the token",
        )
    if not token_held(token_key(token.country_code, token.party_id, token.uid, token.type)):
        raise RefusedError(
            OcpiStatus.UNKNOWN_TOKEN, f"we issued no {token.type} token {token.uid!r}"
        )
    embedded = {fold(t.id) for t in cdr.tariffs or ()}
    for period in cdr.charging_periods:
        named = period.tariff_id
        if named is not None and fold(named) not in embedded and not tariff_held(named):
            raise RefusedError(
                OcpiStatus.INVALID_PARAMETERS,
                f"a charging period names tariff {named!r}, which the CDR does not carry "
                "and we do not hold: PUT the tariff first",
            )
    return CdrReceived(
        event_id=event_id,
        aggregate_key=key,
        occurred_at=cdr.last_updated,
        recorded_at=now,
        source=origin.source,
        correlation_id=origin.correlation_id,
        payload=CdrReceivedPayload(
            country_code=cdr.country_code,
            party_id=cdr.party_id,
            cdr_id=cdr.id,
            # The validated CDR's JSON form: numbers as JSON numbers printing
            # exactly what was sent (a Decimal would be dumped as a string).
            cdr=to_json(cdr),
        ),
    )


@dataclass(frozen=True)
class Reconciliation:
    tariff_source: Literal["held", "embedded", "none"]
    tariff_id: str | None
    charged: Decimal
    expected: Decimal | None
    difference: Decimal | None
    discrepancy: bool
    note: str | None = None


def _named_tariff_id(cdr: Cdr) -> str | None:
    for period in cdr.charging_periods:
        if period.tariff_id is not None:
            return period.tariff_id
    return cdr.tariffs[0].id if cdr.tariffs else None


def reconcile(
    cdr_json: Json | Cdr,
    held: Json | None,
    *,
    tolerance: Decimal,
    time_zone: str,
) -> Reconciliation:
    """Our price of a received CDR. ``held`` is the tariff we hold (the
    tariffs slice's state) under the CDR's party and the tariff id its
    periods name (None if none); without it the CDR's embedded tariff of that id (or its first
    one) is used. ``time_zone``: the Location's, if we hold it (a CdrLocation
    has none), else the caller's fallback. A Credit CDR's expected cost is
    the negated price."""
    cdr = Cdr.model_validate(cdr_json)
    charged = cdr.total_cost.excl_vat
    named = _named_tariff_id(cdr)
    tariff: Tariff | None = None
    source: Literal["held", "embedded", "none"] = "none"
    if held is not None:
        tariff, source = Tariff.model_validate(held), "held"
    elif cdr.tariffs:
        embedded = [t for t in cdr.tariffs if named is None or fold(t.id) == fold(named)]
        tariff, source = (embedded or cdr.tariffs)[0], "embedded"
    if tariff is None:
        return Reconciliation(
            "none", named, charged, None, None, False, "no tariff held or embedded: not checked"
        )
    if tariff.currency != cdr.currency:
        return Reconciliation(
            source,
            tariff.id,
            charged,
            None,
            None,
            True,
            f"tariff currency {tariff.currency} is not the CDR's {cdr.currency}",
        )
    try:
        priced = price_session(
            tariff,
            cdr.charging_periods,
            start=cdr.start_date_time,
            end=cdr.end_date_time,
            time_zone=time_zone,
        )
    except PricingError as exc:
        return Reconciliation(source, tariff.id, charged, None, None, True, f"not priceable: {exc}")
    expected = priced.total_cost.excl_vat
    if cdr.credit:
        expected = -expected
    difference = charged - expected
    return Reconciliation(
        source, tariff.id, charged, expected, difference, abs(difference) > tolerance
    )


def plan_reconciled(
    received: CdrReceived, result: Reconciliation, *, tolerance: Decimal, now: datetime
) -> CdrReconciled:
    """The ``CdrReconciled`` that follows a ``CdrReceived`` (same key; its
    event id derived from it)."""
    ref: CdrRef = received.payload
    return CdrReconciled(
        event_id=derived_event_id(received.event_id, "CdrReconciled"),
        aggregate_key=received.aggregate_key,
        occurred_at=now,
        recorded_at=now,
        source=received.source,
        correlation_id=received.correlation_id,
        causation_id=received.event_id,
        payload=CdrReconciledPayload(
            country_code=ref.country_code,
            party_id=ref.party_id,
            cdr_id=ref.cdr_id,
            tariff_source=result.tariff_source,
            tariff_id=result.tariff_id,
            charged_excl_vat=result.charged,
            expected_excl_vat=result.expected,
            difference=result.difference,
            tolerance=tolerance,
            discrepancy=result.discrepancy,
            note=result.note,
        ),
    )


# --------------------------------------------------------------------------- #
# The slice, as the write path holds it
# --------------------------------------------------------------------------- #


class CdrState(BaseModel):
    """What the decisions need of one CDR key: that a CDR is on record under
    it, ours (``issued``) or a partner's (``received``), and whether our
    price of it is recorded. The CDR itself is not kept: no decision reads
    it, the decision store keeps every key for ever and CDRs are never
    deleted; the MongoDB view holds them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["issued", "received"]
    reconciled: bool = False


def evolve(state: CdrState | None, event: object) -> CdrState | None:
    """A CDR is immutable: the first ``CdrIssued`` or ``CdrReceived`` of a
    key is the CDR, a later one changes nothing (the same object is
    returned). ``CdrReconciled`` records our price of the CDR held (the
    latest one counts); without a CDR it changes nothing either."""
    if isinstance(event, CdrIssued | CdrReceived):
        if state is not None:
            return state
        return CdrState(role="issued" if isinstance(event, CdrIssued) else "received")
    if isinstance(event, CdrReconciled) and state is not None:
        return state.model_copy(update={"reconciled": True})
    return state


SLICE: Slice[CdrState] = Slice(
    "cdrs",
    CDRS,
    evolve,
    lambda state: state.model_dump_json().encode(),
    CdrState.model_validate_json,
)


def tariffs_named(cdr: Cdr) -> set[str]:
    """The ids of the CPO's tariffs a received CDR is judged and priced
    against: those its periods name, and the one it is reconciled with."""
    named = {p.tariff_id for p in cdr.charging_periods if p.tariff_id}
    first = _named_tariff_id(cdr)
    return named | ({first} if first else set())


@dataclass(frozen=True)
class ReceiveCdr:
    """A partner CPO's POST of ``cdr``, with what we hold that it is judged
    against: whether we issued its token (the tokens slice), the CPO's
    tariffs we hold under the ids ``tariffs_named`` gives (folded id ->
    tariff with exact numbers, None if not held; the tariffs slice), and the
    time zone of its location if we hold it (the locations slice)."""

    cdr: Cdr
    poster_owns: Callable[[str, str], bool]
    us: Party
    token_issued: bool
    tariffs: Mapping[str, Json | None]
    time_zone: str | None
    tolerance: Decimal
    origin: Origin


def decide_receive(state: CdrState | None, command: ReceiveCdr, now: datetime) -> Decision[None]:
    """Record a partner's CDR and our reconciliation of it, both under the
    CDR's key; refused (nothing recorded) when ``plan_receive`` refuses it,
    a CDR already on record under that key included."""
    cdr = command.cdr
    received = plan_receive(
        cdr,
        poster_owns=command.poster_owns,
        already_held=lambda _: state is not None,
        us=command.us,
        token_held=lambda _: command.token_issued,
        tariff_held=lambda tariff_id: command.tariffs.get(fold(tariff_id)) is not None,
        origin=command.origin,
        event_id=new_event_id(),
        now=now,
    )
    named = _named_tariff_id(cdr)
    ours = command.tariffs.get(fold(named)) if named else None
    zone = command.time_zone or FALLBACK_TIME_ZONE
    result = reconcile(cdr, ours, tolerance=command.tolerance, time_zone=zone)
    if command.time_zone is None and result.expected is not None:
        note = f"time zone {FALLBACK_TIME_ZONE}: we hold no location {cdr.cdr_location.id!r}"
        result = replace(result, note=result.note or note)
    reconciled = plan_reconciled(received, result, tolerance=command.tolerance, now=now)
    return Decision([received, reconciled], None)


@dataclass(frozen=True)
class CreditCdr:
    """Credit our CDR ``cdr_id``; ``original`` is that CDR as the CDRs view
    holds it (our CDRs are the builder's facts, not the write path's), None
    when we issued none."""

    cdr_id: str
    original: Json | None
    us: Party
    origin: Origin


def credit_key(us: Party, cdr_id: str) -> str:
    """The key a credit of our CDR ``cdr_id`` is decided and recorded under."""
    return cdr_key(us.country_code, us.party_id, credit_id(cdr_id))


def decide_credit(state: CdrState | None, command: CreditCdr, now: datetime) -> Decision[Json]:
    """The Credit CDR, decided on the state of its own key: a CDR held there
    means the original was credited already. Answers the Credit CDR."""
    event = plan_credit(
        command.original,
        state is not None,
        us=command.us,
        cdr_id=command.cdr_id,
        origin=command.origin,
        event_id=new_event_id(),
        now=now,
    )
    return Decision([event], event.payload.cdr)


__all__ = [
    "SLICE",
    "BuildError",
    "BuiltCdr",
    "CdrState",
    "CreditCdr",
    "ReceiveCdr",
    "Reconciliation",
    "build_cdr",
    "cdr_location",
    "choose_tariff",
    "connector_tariff_ids",
    "credit_id",
    "credit_key",
    "credit_of",
    "decide_credit",
    "decide_receive",
    "evolve",
    "plan_credit",
    "plan_issue",
    "plan_receive",
    "plan_reconciled",
    "reconcile",
    "tariffs_named",
]
