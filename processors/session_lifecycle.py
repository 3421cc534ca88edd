"""Our sessions from our chargers' facts (docs/adr/0015).

Charger facts (``charger.transactions.v1``: transaction started, authorised,
meter values, stopped) are folded per OCPI session into ``Lifecycle``;
``session_of`` derives the OCPI Session we own from it, and ``decide`` emits
what changed on ``ocpi.sessions.v1``: a ``SessionPut`` the first time, then
``SessionPatched`` with the changed fields and only the *new* charging
periods (PATCH appends them, mod_sessions "PATCH Method"), or a ``SessionPut``
again when earlier periods changed (a late meter value split one).

Status: PENDING (started, token not yet authorised) → ACTIVE (authorised) →
COMPLETED (stopped after authorisation) or INVALID (stopped, never
authorised). COMPLETED and INVALID are final (SessionStatus: "No more
modifications will be made"): later facts of the session are kept in the
log and change nothing. A new transaction for a session id that is not final
(a charger reboot mid-session, a repeated start) continues that session.

Energy is derived from the *set* of readings, never from their arrival
order: readings are kept per transaction, sorted by time, one per instant;
the energy of a step between two consecutive readings is their difference,
or, when the register went down, the wrap past ``rollover_wh`` when that is
plausible (at most half the register), else nothing (a meter reset: count
from the new value). So energy is never negative, a duplicated or late
reading never counts twice, and for a meter that wraps at most once per step
the energy is exactly what the meter advanced.

Everything above the Faust shell at the bottom is pure: no I/O, no clock.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

import structlog
from pydantic import AwareDatetime, BaseModel, ConfigDict

from schemas.events import (
    EventMeta,
    MeterValuesSampled,
    Party,
    ReservationEnded,
    ReservationMade,
    SessionPatched,
    SessionPut,
    TransactionAuthorized,
    TransactionStarted,
    TransactionStopped,
    derived_event_id,
)
from schemas.events.chargers import TokenIdentity
from schemas.events.sessions import SessionPatchedPayload, SessionPutPayload, session_key
from schemas.ocpi.common import format_ocpi_datetime
from schemas.ocpi.sessions import AuthMethod, Session, SessionStatus, to_json

log = structlog.get_logger(__name__)

Json = dict[str, Any]
ChargerFact = (
    TransactionStarted
    | TransactionAuthorized
    | MeterValuesSampled
    | TransactionStopped
    | ReservationMade
    | ReservationEnded
)

_MWH = Decimal("0.001")  # readings are kept to the mWh
# types.asciidoc, number: "numbers use 4 decimals" (docs/adr/0039 §3). What
# we publish is rounded half-up to 4 decimals, once: a period's volumes
# from its own meter step and duration, the session's kwh from the exact
# energy of all steps (never a sum of rounded periods).
_KWH = Decimal("0.0001")
_HOURS = Decimal("0.0001")


@dataclass(frozen=True)
class MeterConfig:
    """``rollover_wh``: the register wraps to 0 after this many Wh; 0 when it
    never wraps. ``currency``: ISO 4217 of our sessions."""

    rollover_wh: int = 0
    currency: str = "EUR"


class Reading(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    at: AwareDatetime
    wh: Decimal


class Place(BaseModel):
    """Where the session is (``#NA`` EVSE/connector while only reserved
    without one), and its OCPI id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    country_code: str
    party_id: str
    location_id: str
    evse_uid: str
    connector_id: str
    session_id: str


def _place(p: Any) -> Place:
    return Place(**{name: getattr(p, name) for name in Place.model_fields})


class Transaction(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    started_at: AwareDatetime | None = None
    stopped_at: AwareDatetime | None = None
    readings: tuple[Reading, ...] = ()  # sorted by time, one per instant


class Lifecycle(BaseModel):
    """What we know of one of our sessions, from its charger facts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ref: Place | None = None  # where it happens (the latest start, else the reservation)
    token: TokenIdentity | None = None
    authorized: bool = False
    auth_method: AuthMethod | None = None
    authorization_reference: str | None = None
    created_at: AwareDatetime | None = None
    reserved_at: AwareDatetime | None = None
    active_since: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    last_fact_at: AwareDatetime | None = None
    transactions: dict[str, Transaction] = {}
    published: Json | None = None  # the Session we last emitted

    @property
    def final(self) -> bool:
        return self.ended_at is not None

    @property
    def started(self) -> bool:
        return self.ref is not None and self.token is not None


# --- energy -------------------------------------------------------------------


def step_wh(before: Decimal, after: Decimal, rollover_wh: int) -> Decimal:
    """Energy between two consecutive readings of one register; never negative."""
    delta = after - before
    if delta >= 0:
        return delta
    if rollover_wh > 0 and before <= rollover_wh:
        wrapped = (Decimal(rollover_wh) - before) + after
        if 0 <= wrapped <= Decimal(rollover_wh) / 2:
            return wrapped
    return Decimal(0)  # a reset (or an implausible wrap): count from the new value


def _window(tx: Transaction) -> list[Reading]:
    return [
        r
        for r in tx.readings
        if (tx.started_at is None or r.at >= tx.started_at)
        and (tx.stopped_at is None or r.at <= tx.stopped_at)
    ]


def energy_wh(state: Lifecycle, rollover_wh: int) -> Decimal:
    total = Decimal(0)
    for tx in state.transactions.values():
        readings = _window(tx)
        for a, b in itertools.pairwise(readings):
            total += step_wh(a.wh, b.wh, rollover_wh)
    return total


def _kwh(wh: Decimal) -> Decimal:
    return _number((wh / 1000).quantize(_KWH, rounding=ROUND_HALF_UP))


def _number(value: Decimal) -> Decimal:
    # Plain form (no exponent): what a JSON number prints.
    return Decimal(format(value.normalize(), "f"))


def _hours(start: datetime, end: datetime) -> Decimal:
    seconds = Decimal((end - start).total_seconds())
    return _number((seconds / 3600).quantize(_HOURS, rounding=ROUND_HALF_UP))


def charging_periods(state: Lifecycle, rollover_wh: int) -> list[Json]:
    """One period per meter interval (from one reading to the next), with the
    ENERGY (kWh) and TIME (h) of that interval, in time order; before them,
    the reservation's RESERVATION_TIME once it has ended (charging started,
    or it expired)."""
    periods: list[tuple[datetime, Json]] = []
    if state.reserved_at is not None:
        starts = [t.started_at for t in state.transactions.values() if t.started_at]
        end = min(starts) if starts else state.ended_at
        if end is not None and end > state.reserved_at:
            periods.append(
                (
                    state.reserved_at,
                    {
                        "start_date_time": format_ocpi_datetime(state.reserved_at),
                        "dimensions": [
                            {"type": "RESERVATION_TIME", "volume": _hours(state.reserved_at, end)}
                        ],
                    },
                )
            )
    for tx in state.transactions.values():
        readings = _window(tx)
        for a, b in itertools.pairwise(readings):
            energy = _kwh(step_wh(a.wh, b.wh, rollover_wh))
            hours = _hours(a.at, b.at)
            periods.append(
                (
                    a.at,
                    {
                        "start_date_time": format_ocpi_datetime(a.at),
                        "dimensions": [
                            {"type": "ENERGY", "volume": energy},
                            {"type": "TIME", "volume": hours},
                        ],
                    },
                )
            )
    periods.sort(key=lambda p: p[0])
    return [p for _, p in periods]


# --- fold ---------------------------------------------------------------------


def _with_reading(tx: Transaction, at: datetime, wh: Decimal) -> Transaction:
    wh = wh.quantize(_MWH, rounding=ROUND_HALF_EVEN)
    kept = {r.at: r for r in tx.readings}
    held = kept.get(at)
    # Two readings of one instant: keep the higher, whatever arrived first.
    if held is None or wh > held.wh:
        kept[at] = Reading(at=at, wh=wh)
    return tx.model_copy(update={"readings": tuple(sorted(kept.values(), key=lambda r: r.at))})


def _charging_started(transactions: dict[str, Transaction]) -> bool:
    return any(t.started_at is not None for t in transactions.values())


def evolve(state: Lifecycle, fact: ChargerFact) -> Lifecycle:
    """Fold one charger fact into a session's lifecycle. Idempotent: a fact
    folded twice gives the state it gave once."""
    p = fact.payload
    if state.final:
        return state
    last = max(state.last_fact_at or p.at, p.at)
    if isinstance(fact, ReservationMade):
        if _charging_started(state.transactions) or (
            state.ref is not None and state.reserved_at is None
        ):
            return state.model_copy(update={"last_fact_at": last})  # too late to reserve
        if state.reserved_at is not None:
            # The same reservation made again (ReserveNow with a known
            # reservation_id replaces it, mod_commands): where and for whom
            # follow the latest; the session and its reservation time go on.
            return state.model_copy(
                update={
                    "last_fact_at": last,
                    "ref": _place(p),
                    "token": fact.payload.token,
                    "authorization_reference": fact.payload.authorization_reference,
                }
            )
        return state.model_copy(
            update={
                "last_fact_at": last,
                "ref": _place(p),
                "token": fact.payload.token,
                "auth_method": AuthMethod.COMMAND,
                "authorization_reference": fact.payload.authorization_reference,
                "created_at": p.at,
                "reserved_at": p.at,
            }
        )
    if isinstance(fact, ReservationEnded):
        if state.reserved_at is None or _charging_started(state.transactions):
            return state.model_copy(update={"last_fact_at": last})  # used, or never made
        # Not used: the session ends (mod_sessions, "Reservation": COMPLETED).
        return state.model_copy(update={"last_fact_at": last, "ended_at": p.at})
    tx_id = fact.payload.transaction_id
    tx = state.transactions.get(tx_id, Transaction())
    update: dict[str, Any] = {"last_fact_at": last}
    if isinstance(fact, TransactionStarted):
        start = p.at if tx.started_at is None else min(tx.started_at, p.at)
        tx = _with_reading(
            tx.model_copy(update={"started_at": start}), p.at, fact.payload.meter_start_wh
        )
        if state.ref is None:
            update.update(ref=_place(p), token=fact.payload.token, created_at=p.at)
        elif not _charging_started(state.transactions):
            # The reservation is used: charging where the charger says, with
            # the token presented (mod_sessions, "Reservation").
            update.update(ref=_place(p), token=fact.payload.token)
        else:
            update["created_at"] = min(state.created_at or p.at, p.at)
        if fact.payload.authorized and not state.authorized:
            update.update(
                authorized=True,
                auth_method=fact.payload.auth_method,
                authorization_reference=fact.payload.authorization_reference,
                active_since=p.at,
            )
        elif state.auth_method is None:
            update["auth_method"] = fact.payload.auth_method
    elif isinstance(fact, TransactionAuthorized):
        if not state.authorized:
            update.update(
                authorized=True,
                auth_method=fact.payload.auth_method,
                authorization_reference=fact.payload.authorization_reference,
                active_since=p.at,
            )
    elif isinstance(fact, MeterValuesSampled):
        tx = _with_reading(tx, p.at, fact.payload.meter_wh)
    elif isinstance(fact, TransactionStopped):
        tx = _with_reading(
            tx.model_copy(update={"stopped_at": p.at}), p.at, fact.payload.meter_stop_wh
        )
    transactions = {**state.transactions, tx_id: tx}
    update["transactions"] = transactions
    stops = [t.stopped_at for t in transactions.values() if t.stopped_at is not None]
    if _charging_started(transactions) and stops:
        # The first stop ends the session (a stop folded before its start
        # ends it as soon as the start arrives).
        update["ended_at"] = min(stops)
    return state.model_copy(update=update)


def status_of(state: Lifecycle) -> SessionStatus:
    unused_reservation = state.reserved_at is not None and not _charging_started(state.transactions)
    if state.final:
        return (
            SessionStatus.COMPLETED
            if state.authorized or unused_reservation
            else SessionStatus.INVALID
        )
    if state.authorized:
        return SessionStatus.ACTIVE
    return SessionStatus.RESERVATION if unused_reservation else SessionStatus.PENDING


def session_of(state: Lifecycle, config: MeterConfig) -> Json | None:
    """The OCPI Session we own for this lifecycle (None before it started)."""
    if state.ref is None or state.token is None or state.created_at is None:
        return None
    ref, token = state.ref, state.token
    assert state.last_fact_at is not None
    body: Json = {
        "country_code": ref.country_code,
        "party_id": ref.party_id,
        "id": ref.session_id,
        # When it went ACTIVE; while PENDING, when it was created.
        "start_date_time": state.active_since or state.created_at,
        "end_date_time": state.ended_at,
        "kwh": _kwh(energy_wh(state, config.rollover_wh)),
        "cdr_token": {
            "country_code": token.country_code,
            "party_id": token.party_id,
            "uid": token.uid,
            "type": token.type,
            "contract_id": token.contract_id,
        },
        "auth_method": state.auth_method or AuthMethod.WHITELIST,
        "authorization_reference": state.authorization_reference,
        "location_id": ref.location_id,
        "evse_uid": ref.evse_uid,
        "connector_id": ref.connector_id,
        "currency": config.currency,
        "charging_periods": charging_periods(state, config.rollover_wh) or None,
        "status": status_of(state),
        "last_updated": state.last_fact_at,
    }
    return to_json(Session.model_validate(body))


# --- decide -------------------------------------------------------------------


def _changes(before: Json, after: Json) -> Json | None:
    """The PATCH from ``before`` to ``after``, or None when only a PUT can say
    it (earlier charging periods changed)."""
    old_periods = before.get("charging_periods") or []
    new_periods = after.get("charging_periods") or []
    if new_periods[: len(old_periods)] != old_periods:
        return None
    patch: Json = {
        name: after.get(name)
        for name in sorted(set(before) | set(after))
        if name != "charging_periods" and before.get(name) != after.get(name)
    }
    if len(new_periods) > len(old_periods):
        patch["charging_periods"] = new_periods[len(old_periods) :]
    # Always carried (unchanged, so harmless): every event of our session
    # names the eMSP that owns its token, the one partner it is pushed to.
    patch["cdr_token"] = after["cdr_token"]
    patch["last_updated"] = after["last_updated"]
    return patch


def decide(
    state: Lifecycle, fact: ChargerFact, config: MeterConfig, now: datetime
) -> tuple[Lifecycle, list[SessionPut | SessionPatched]]:
    """Fold the fact; emit what changed in our OCPI Session. Event ids are
    derived from the fact, so processing it again emits the same ids."""
    after = evolve(state, fact)
    session = session_of(after, config)
    if session is None or session == after.published:
        return after, []
    after = after.model_copy(update={"published": session})
    cc, pid, sid = session["country_code"], session["party_id"], session["id"]
    key = session_key(cc, pid, sid)
    meta: dict[str, Any] = {
        "event_id": _derived(fact, key),
        "aggregate_key": key,
        "occurred_at": fact.payload.at,
        "recorded_at": now,
        "source": Party(country_code=cc.upper(), party_id=pid.upper()),
        "correlation_id": fact.correlation_id,
        "causation_id": fact.event_id,
    }
    last_updated = after.last_fact_at
    assert last_updated is not None
    patch = None if state.published is None else _changes(state.published, session)
    if patch is None:
        return after, [
            SessionPut(
                **meta,
                payload=SessionPutPayload(
                    country_code=cc,
                    party_id=pid,
                    session_id=sid,
                    session=session,
                    last_updated=last_updated,
                ),
            )
        ]
    return after, [
        SessionPatched(
            **meta,
            payload=SessionPatchedPayload(
                country_code=cc,
                party_id=pid,
                session_id=sid,
                patch=patch,
                last_updated=last_updated,
            ),
        )
    ]


def _derived(fact: EventMeta, key: str) -> uuid.UUID:
    return derived_event_id(fact.event_id, f"Session:{key}")


def lifecycle_from_table(value: Any) -> Lifecycle:
    return Lifecycle() if value is None else Lifecycle.model_validate(value)


# --- Faust shell --------------------------------------------------------------

Emit = Callable[[SessionPut | SessionPatched], Awaitable[None]]
_FACTS = (
    TransactionStarted,
    TransactionAuthorized,
    MeterValuesSampled,
    TransactionStopped,
    ReservationMade,
    ReservationEnded,
)


def register(app: Any, source_topic: Any, emit: Emit, partitions: int, config: MeterConfig) -> Any:
    """Attach the agent and its table (``session-lifecycle``, kept across
    restarts by its changelog topic) to a Faust app; return the agent."""
    import faust  # local import: the pure rule above must not need Faust

    from processors.clock import utc_now
    from schemas.events import parse_event

    table = app.Table(
        "session-lifecycle",
        default=None,
        partitions=partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
    )

    @app.agent(source_topic, name="session-lifecycle")  # type: ignore[untyped-decorator]
    async def session_lifecycle(stream: faust.StreamT[bytes]) -> None:
        async for raw in stream:
            try:
                fact = parse_event(raw)
            except ValueError:
                # A type this version does not know (docs/topics.md: skip it,
                # never fail on it).
                log.warning("session_lifecycle_skipped_undecodable")
                continue
            if not isinstance(fact, _FACTS):
                continue
            key = fact.payload.session_key
            before = lifecycle_from_table(table.get(key))
            after, emitted = decide(before, fact, config, utc_now())
            if after != before:
                table[key] = after.model_dump(mode="json")
            for event in emitted:
                await emit(event)

    return session_lifecycle
