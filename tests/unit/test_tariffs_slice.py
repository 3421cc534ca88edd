"""The Tariffs slice (producers/tariffs.py): decisions, events, the state
the write path holds and the view's fold (projections/mongo/tariffs.apply)
built on it. Pure, no services."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from producers.tariffs import (
    KEPT_VERSIONS,
    SLICE,
    DeleteTariff,
    Origin,
    PutTariff,
    RefusedError,
    TariffState,
    authorize_write,
    decide,
    evolve,
    find,
    held,
    held_at,
    plan_delete,
    plan_put,
    served,
)
from projections.mongo.tariffs import apply
from projections.position import Record
from schemas.events import Party, TariffDeleted, TariffPut, parse_event, serialize_event
from schemas.events.tariffs import TariffRef
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.tariffs import Tariff, loads_exact, tariff_from_json
from schemas.topics import TARIFFS, topic_for
from tests.tariff_objects import tariff, tariff_json

NOW = datetime(2026, 2, 1, 11, 0, tzinfo=UTC)
REF = TariffRef(country_code="nl", party_id="abc", tariff_id="Tar-1")
ORIGIN = Origin(Party(country_code="NL", party_id="ABC"), "corr-7")


def _put(body: Any = None, current: dict[str, Any] | None = None) -> TariffPut:
    planned = plan_put(REF, tariff("TAR-1") if body is None else body, current, ORIGIN, NOW)
    assert isinstance(planned.event, TariffPut)
    return planned.event


# --- decisions ---------------------------------------------------------------


def test_put_records_the_whole_tariff_with_exact_numbers() -> None:
    planned = plan_put(REF, tariff("TAR-1"), None, ORIGIN, NOW)
    event = planned.event
    assert isinstance(event, TariffPut)
    assert planned.created and not planned.stale
    assert event.aggregate_key == "NL/ABC/TAR-1"
    assert event.correlation_id == "corr-7"
    assert event.recorded_at == NOW
    assert event.occurred_at == event.payload.last_updated
    assert event.payload.tariff_id == "Tar-1"  # as received
    # The stored object reads back as the same Tariff, digit for digit.
    wire = serialize_event(event)
    back = tariff_from_json(json.dumps(json.loads(wire)["payload"]["object"]))
    assert back == tariff_from_json(tariff_json("TAR-1"))
    price = back.elements[2].price_components[0].price
    assert price == Decimal("0.123456789012345")


def test_event_round_trip_and_topic() -> None:
    event = _put()
    assert parse_event(serialize_event(event)) == event
    assert topic_for("TariffPut") is TARIFFS
    assert topic_for("TariffDeleted") is TARIFFS
    assert TARIFFS.name == "ocpi.tariffs.v1"
    assert TARIFFS.config["retention.ms"] == "-1"


def test_replacing_is_not_creating() -> None:
    held = json.loads(json.dumps(_put().payload.object))
    planned = plan_put(REF, tariff("TAR-1", at="2026-02-01T10:30:00Z"), held, ORIGIN, NOW)
    assert not planned.created and not planned.stale


def test_an_older_put_is_recorded_but_marked_stale() -> None:
    held = _put().payload.object
    planned = plan_put(REF, tariff("TAR-1", at="2026-01-01T00:00:00Z"), held, ORIGIN, NOW)
    assert isinstance(planned.event, TariffPut)
    assert planned.stale


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (tariff("TAR-2"), "id"),
        (tariff("TAR-1", country_code="DE"), "country_code"),
        (tariff("TAR-1", party_id="ABD"), "party_id"),
    ],
)
def test_ids_in_the_body_must_name_the_url(body: dict[str, Any], field: str) -> None:
    with pytest.raises(RefusedError) as refused:
        plan_put(REF, body, None, ORIGIN, NOW)
    assert refused.value.status is OcpiStatus.INVALID_PARAMETERS
    assert field in refused.value.message


def test_ids_compare_case_insensitively() -> None:
    plan_put(REF, tariff("tar-1", country_code="NL", party_id="Abc"), None, ORIGIN, NOW)


def test_invalid_tariffs_are_validation_errors() -> None:
    body = tariff("TAR-1")
    body["elements"] = []
    with pytest.raises(ValidationError):
        plan_put(REF, body, None, ORIGIN, NOW)
    with pytest.raises(ValidationError):
        plan_put(REF, {**tariff("TAR-1"), "currency": "euro"}, None, ORIGIN, NOW)


def test_a_number_that_cannot_be_written_back_exactly_is_refused() -> None:
    text = tariff_json("TAR-1").replace("0.3175", "0.31750000000000000000000001")
    with pytest.raises(RefusedError) as refused:
        plan_put(REF, loads_exact(text), None, ORIGIN, NOW)
    assert refused.value.status is OcpiStatus.INVALID_PARAMETERS


def test_only_the_owner_may_write() -> None:
    theirs = [Party(country_code="NL", party_id="ABC"), Party(country_code="NL", party_id="ABD")]
    assert authorize_write(REF, theirs) == Party(country_code="NL", party_id="ABC")
    with pytest.raises(RefusedError) as refused:
        authorize_write(REF, [Party(country_code="DE", party_id="XYZ")])
    assert refused.value.status is OcpiStatus.INVALID_PARAMETERS


def test_delete_of_a_held_tariff_is_stamped_now() -> None:
    planned = plan_delete(REF, _put().payload.object, ORIGIN, NOW)
    event = planned.event
    assert isinstance(event, TariffDeleted)
    assert event.payload.last_updated == NOW
    assert event.aggregate_key == "NL/ABC/TAR-1"


def test_delete_or_get_of_an_unknown_tariff_is_404() -> None:
    for attempt in (lambda: plan_delete(REF, None, ORIGIN, NOW), lambda: find(None, REF)):
        with pytest.raises(RefusedError) as refused:
            attempt()
        assert (refused.value.status, refused.value.http_status) == (OcpiStatus.CLIENT_ERROR, 404)


# --- the view's fold -----------------------------------------------------------


def _record(event: TariffPut | TariffDeleted, offset: int, partition: int = 0) -> Record[Any]:
    return Record(TARIFFS.name, partition, offset, parse_event(serialize_event(event)))


def _delete(at: datetime = NOW) -> TariffDeleted:
    planned = plan_delete(REF, {"held": True}, ORIGIN, at)
    assert isinstance(planned.event, TariffDeleted)
    return planned.event


def test_fold_put_then_redelivery_changes_nothing() -> None:
    rec = _record(_put(), 5)
    doc = apply(None, rec)
    assert doc is not None
    assert doc["_id"] == "NL/ABC/TAR-1"
    assert (doc["country_code"], doc["party_id"]) == ("NL", "ABC")
    assert doc["tariff"]["id"] == "TAR-1"
    assert doc["_ts"] == "2026-02-01T10:00:00.000000Z"
    assert doc["_positions"] == {"ocpi_tariffs_v1@0": 5}
    assert apply(doc, rec) is doc


def test_fold_keeps_the_newer_version() -> None:
    newer = _record(_put(tariff("TAR-1", at="2026-02-01T10:30:00Z")), 1)
    older = _record(_put(tariff("TAR-1", at="2026-02-01T09:00:00Z")), 2)
    doc = apply(apply(None, newer), older)
    assert doc is not None
    assert doc["tariff"]["last_updated"] == "2026-02-01T10:30:00Z"
    assert doc["_positions"] == {"ocpi_tariffs_v1@0": 2}  # recorded, not applied


def test_fold_delete_leaves_a_tombstone_older_versions_cannot_pass() -> None:
    doc = apply(None, _record(_put(), 1))
    deleted = apply(doc, _record(_delete(), 2))
    assert deleted is not None
    assert deleted["tariff"] is None and deleted["_ts"] is None
    # A re-delivered or late PUT of the version before the deletion stays deleted.
    again = apply(deleted, _record(_put(), 3))
    assert again is not None and again["tariff"] is None
    older_than_deletion = apply(again, _record(_put(tariff("TAR-1", at="2026-02-01T10:59:00Z")), 4))
    assert older_than_deletion is not None and older_than_deletion["tariff"] is None
    # A version updated after the deletion brings the tariff back.
    back = apply(again, _record(_put(tariff("TAR-1", at="2026-02-01T12:00:00Z")), 5))
    assert back is not None and back["tariff"]["last_updated"] == "2026-02-01T12:00:00Z"


def test_fold_deletes_a_tariff_dated_ahead_of_our_clock() -> None:
    future = "2099-01-01T00:00:00Z"
    doc = apply(None, _record(_put(tariff("TAR-1", at=future)), 1))
    deleted = apply(doc, _record(_delete(), 2))  # stamped NOW, long before 2099
    assert deleted is not None and deleted["tariff"] is None
    assert deleted["_stamp"] == "2099-01-01T00:00:00.000000Z"
    # A retry of the deleted version stays deleted; a later version is applied.
    retry = apply(deleted, _record(_put(tariff("TAR-1", at=future)), 3))
    assert retry is not None and retry["tariff"] is None
    later = apply(retry, _record(_put(tariff("TAR-1", at="2099-01-01T00:00:01Z")), 4))
    assert later is not None and later["tariff"] is not None


def test_fold_skips_positions_already_applied_per_partition() -> None:
    doc = apply(None, _record(_put(), 7, partition=3))
    assert doc is not None
    assert doc["_positions"] == {"ocpi_tariffs_v1@3": 7}
    assert apply(doc, _record(_put(), 6, partition=3)) is doc


# --- the slice's state, as the write path holds it ---------------------------------


def _fold(*events: TariffPut | TariffDeleted) -> TariffState | None:
    state: TariffState | None = None
    for event in events:
        state = evolve(state, event)
    return state


def test_decide_answers_created_only_for_a_tariff_not_held() -> None:
    put = PutTariff(REF, tariff("TAR-1"), ORIGIN)
    first = decide(None, put, NOW)
    assert first.answer is True and isinstance(first.events[0], TariffPut)
    held = _fold(*first.events)
    assert decide(held, put, NOW).answer is False
    deleted = _fold(*first.events, _delete())
    assert deleted is not None and deleted.tariff is None
    assert decide(deleted, put, NOW).answer is True  # a tombstone holds no tariff


def test_decide_deletes_only_a_tariff_held() -> None:
    delete = DeleteTariff(REF, ORIGIN)
    for state in (None, _fold(_put(), _delete())):
        with pytest.raises(RefusedError) as refused:
            decide(state, delete, NOW)
        assert refused.value.http_status == 404
    decision = decide(_fold(_put()), delete, NOW)
    assert [type(e) for e in decision.events] == [TariffDeleted]
    assert decision.answer is False


def test_every_event_a_decision_records_is_keyed_by_the_tariff() -> None:
    held = _fold(_put())
    for command in (PutTariff(REF, tariff("TAR-1"), ORIGIN), DeleteTariff(REF, ORIGIN)):
        assert [e.aggregate_key for e in decide(held, command, NOW).events] == [REF.tariff_key]


def test_the_view_is_the_slices_state_with_its_positions() -> None:
    events = [
        _put(tariff("TAR-1", at="2026-02-01T10:30:00Z")),
        _put(tariff("TAR-1", at="2026-02-01T09:00:00Z")),  # stale
        _delete(),
        _put(tariff("TAR-1", at="2026-02-01T12:00:00Z")),
    ]
    doc: dict[str, Any] | None = None
    state: TariffState | None = None
    for offset, event in enumerate(events):
        doc = apply(doc, _record(event, offset))
        state = evolve(state, parse_event(serialize_event(event)))
        assert doc is not None and state is not None
        assert (doc["tariff"], doc["_stamp"]) == (served(state), state.stamp)


def test_the_state_keeps_numbers_as_decimals_digit_for_digit() -> None:
    state = _fold(_put())
    assert state is not None and state.tariff is not None
    price = state.tariff["elements"][2]["price_components"][0]["price"]
    assert price == Decimal("0.123456789012345")
    # What the view stores and partners read: the JSON number printing it.
    assert served(state) == _put().payload.object


@pytest.mark.parametrize(
    "number",
    ["0.1", "1e-7", "123456789.123456789", "0.30000000000000004", "-0.0", "7", "1E+2"],
)
def test_the_stored_state_round_trips_exactly(number: str) -> None:
    text = tariff_json("TAR-1").replace("0.3175", number)
    state = TariffState(tariff=loads_exact(text), stamp="2026-02-01T10:00:00.000000Z")
    raw = SLICE.dump(state)
    back = SLICE.load(raw)
    assert back == state
    got = back.tariff["elements"][1]["price_components"][0]["price"]  # type: ignore[index]
    assert str(got) == str(loads_exact(number))
    assert SLICE.load(SLICE.dump(back)) == state


def test_a_price_a_float_prints_with_17_digits_is_still_priced_exactly() -> None:
    # 0.30000000000000004 is a double's shortest text: it travels in the
    # event as that float, and the state holds it as its Decimal, which the
    # Tariff model takes (a float of more than 15 digits it would refuse).
    text = tariff_json("TAR-1").replace("0.3175", "0.30000000000000004")
    state = SLICE.load(SLICE.dump(_fold(_put(loads_exact(text)))))  # type: ignore[arg-type]
    parsed = Tariff.model_validate(held(state))
    assert parsed.elements[1].price_components[0].price == Decimal("0.30000000000000004")


# --- the version held at an instant (reconciliation of a CDR) -----------------------


def _recorded(event: TariffPut | TariffDeleted, at: datetime) -> TariffPut | TariffDeleted:
    return event.model_copy(update={"recorded_at": at})


def test_the_version_held_when_a_session_started_is_the_one_that_judges_its_cdr() -> None:
    hour = timedelta(hours=1)
    v1 = _recorded(_put(tariff("TAR-1", at="2026-01-01T00:00:00Z")), NOW)
    v2 = _recorded(_put(tariff("TAR-1", at="2026-01-02T00:00:00Z")), NOW + 2 * hour)
    state = SLICE.fold(None, [v1, v2])
    assert state is not None
    first, second = held(SLICE.fold(None, [v1])), held(state)
    assert first != second
    # A session that began between the two: the first; after: the second.
    assert held_at(state, NOW + hour) == first
    assert held_at(state, NOW + 3 * hour) == second
    # Before we knew the tariff at all: the earliest version we know.
    assert held_at(state, NOW - hour) == first
    # A deletion in between: nothing was held then.
    gone = _recorded(
        plan_delete(REF, second, ORIGIN, NOW + 3 * hour).event,  # type: ignore[arg-type]
        NOW + 3 * hour,
    )
    v3 = _recorded(_put(tariff("TAR-1", at="2026-01-05T00:00:00Z")), NOW + 5 * hour)
    later = SLICE.fold(state, [gone, v3])
    assert held_at(later, NOW + 4 * hour) is None
    assert held_at(later, NOW + 6 * hour) == held(later)
    # The state stored by the write path keeps the versions; a stale PUT
    # changes nothing.
    assert SLICE.load(SLICE.dump(later)) == later
    assert SLICE.fold(later, [v1]) == later
    # Only the last KEPT_VERSIONS earlier versions are kept.
    many = [
        _recorded(_put(tariff("TAR-1", at=f"2026-02-{d:02}T00:00:00Z")), NOW + d * hour)
        for d in range(1, 20)
    ]
    kept = SLICE.fold(None, many)
    assert kept is not None and len(kept.before) == KEPT_VERSIONS
