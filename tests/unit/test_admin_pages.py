"""The page logic of the admin dashboard's pages beyond the board
(api/admin/pages.py): pure functions from view documents to what a page
shows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from api.admin.charts import (
    accepted_per_minute,
    bar_chart,
    lag_series,
    line_chart,
    projection_lag,
    status_series,
)
from api.admin.pages import command_targets
from api.admin.shown import (
    amount,
    cdr_row,
    location_pin,
    location_row,
    partner_row,
    price,
    reconciliation_row,
    session_row,
    status_history,
    token_row,
)
from processors.cdr_push import CDRS_PUSH
from processors.evse_status_push import EVSE_STATUS_PUSH
from processors.push import LOCATIONS_PUSH
from processors.session_push import SESSIONS_PUSH
from producers.partner_stats import PUSH_LANES, PullStamps, PushTally, parse_stats
from schemas.events import LocationObjectPatched, LocationObjectPut


def test_a_charger_offers_its_connectors_in_ocpp_order_as_commands_name_them() -> None:
    doc = {
        "_id": "CP-1",
        "location_id": "LOC1",
        "connectors": [
            {"ocpp_connector_id": 2, "evse_uid": "E2", "connector_id": "1"},
            {"ocpp_connector_id": 1, "evse_uid": "E1", "connector_id": "1"},
            {"ocpp_connector_id": 3, "evse_uid": "", "connector_id": "1"},  # not mapped
        ],
    }
    targets = command_targets(doc)
    assert [(t["evse_uid"], t["connector_id"]) for t in targets] == [("E1", "1"), ("E2", "1")]
    assert {t["location_id"] for t in targets} == {"LOC1"}
    assert targets[0]["label"] == "CP-1 · OCPP connector 1 (E1 / 1)"
    assert command_targets({"_id": "CP-2", "location_id": "L"}) == []


def test_amounts_are_shown_exactly_with_two_decimals_at_least() -> None:
    assert amount(3) == "3.00"
    assert amount(2.475) == "2.475"  # a tariff may price below the cent
    assert amount("1234.5") == "1,234.50"
    assert amount(-2.5) == "-2.50"  # a Credit CDR
    assert amount(None) == ""
    assert price({"excl_vat": 2.5, "incl_vat": 3.025}, "EUR") == "2.50 EUR (3.025 incl. VAT)"
    assert price({"excl_vat": 0}, "EUR") == "0.00 EUR"
    assert price(None) == ""


def test_a_session_row_names_where_who_and_what_it_cost() -> None:
    row = session_row(
        {
            "id": "S1",
            "country_code": "ZZ",
            "party_id": "HUB",
            "location_id": "LOC1",
            "evse_uid": "EVSE1",
            "connector_id": "1",
            "cdr_token": {"uid": "04A1", "country_code": "NL", "party_id": "PEE"},
            "status": "ACTIVE",
            "start_date_time": "2026-06-01T12:00:00Z",
            "kwh": 8.25,
            "currency": "EUR",
            "last_updated": "2026-06-01T12:15:00Z",
        }
    )
    assert row["where"] == "LOC1 / EVSE1 / 1"
    assert row["token"] == "04A1 (NL-PEE)"
    assert (row["started"], row["ended"]) == ("2026-06-01 12:00:00 UTC", "")
    assert (row["kwh"], row["cost"]) == ("8.25", "")


CDR = {
    "id": "OS-1",
    "session_id": "OS-1",
    "currency": "EUR",
    "cdr_location": {"id": "LOC1", "evse_uid": "EVSE1", "connector_id": "1"},
    "cdr_token": {"uid": "04A1", "country_code": "NL", "party_id": "PEE"},
    "start_date_time": "2026-06-01T12:00:00Z",
    "end_date_time": "2026-06-01T12:30:00Z",
    "total_energy": 8.25,
    "total_time": 0.5,
    "total_cost": {"excl_vat": 2.975, "incl_vat": 3.6},
    "total_fixed_cost": {"excl_vat": 0.5},
    "total_energy_cost": {"excl_vat": 2.475},
    "tariffs": [{"id": "T1"}],
    "charging_periods": [{}, {}],
}


def test_a_cdr_row_breaks_the_total_down_and_says_whether_it_may_be_credited() -> None:
    row = cdr_row(CDR, credited=False)
    assert row["total"] == "2.975 EUR (3.60 incl. VAT)"
    assert row["parts"] == [
        {"label": "Fixed", "price": "0.50 EUR"},
        {"label": "Energy", "price": "2.475 EUR"},
    ]
    assert (row["time"], row["tariffs"], row["periods"]) == ("30 min", ["T1"], 2)
    assert row["may_credit"] and not row["is_credit"]
    assert not cdr_row(CDR, credited=True)["may_credit"]
    credit = cdr_row({**CDR, "id": "OS-1-C", "credit": True, "credit_reference_id": "OS-1"},
                     credited=False)  # fmt: skip
    assert credit["is_credit"] and credit["credit_of"] == "OS-1" and not credit["may_credit"]


def test_reconciliation_rows_say_in_words_how_a_received_cdr_compares() -> None:
    base = {"cdr_id": "C1", "country_code": "NL", "party_id": "PEE", "currency": "EUR"}
    flagged = reconciliation_row(
        {
            **base,
            "reconciliation": {
                "tariff_source": "held",
                "tariff_id": "T1",
                "charged_excl_vat": "3.00",
                "expected_excl_vat": "2.475",
                "difference": "0.525",
                "tolerance": "0.01",
                "discrepancy": True,
            },
        }
    )
    assert (flagged["verdict"], flagged["tone"]) == ("discrepancy", "bad")
    assert (flagged["charged"], flagged["expected"], flagged["difference"]) == (
        "3.00 EUR",
        "2.475 EUR",
        "0.525",
    )
    unpriced = {"tariff_source": "none", "charged_excl_vat": "3", "expected_excl_vat": None,
                "discrepancy": False}  # fmt: skip
    assert reconciliation_row({**base, "reconciliation": unpriced})["verdict"] == (
        "no tariff to price it with"
    )
    assert reconciliation_row({**base, "reconciliation": None})["verdict"] == "not reconciled yet"


# --- partners -------------------------------------------------------------------------


def test_the_lanes_the_dashboard_reads_are_the_lanes_that_push() -> None:
    modules = (LOCATIONS_PUSH, SESSIONS_PUSH, CDRS_PUSH, EVSE_STATUS_PUSH)
    assert tuple((m.name, m.group_suffix) for m in modules) == PUSH_LANES


def test_a_tally_counts_and_says_the_last_failure_in_words() -> None:
    tally = PushTally()
    assert tally.fields("cdrs") == {
        "cdrs:delivered": "0",
        "cdrs:failures": "0",
        "cdrs:repaired": "0",
    }
    tally.ok(100.0)
    tally.failed(160.0, "retrying", 503, None, None)
    tally.failed(170.0, "rejected", 200, 2001, None)
    tally.failed(180.0, "retrying", None, None, "ConnectTimeout")
    stored = tally.fields("cdrs")
    assert stored["cdrs:failures"] == "3" and stored["cdrs:last_failure"] == (
        "retrying: ConnectTimeout"
    )
    tally.failed(190.0, "rejected", 200, 2001, None)
    tally.repaired_by_put(200.0)  # a refused PATCH's repair PUT was taken
    assert parse_stats({k.encode(): v.encode() for k, v in tally.fields("cdrs").items()}) == {
        "cdrs": {
            "delivered": 2,
            "failures": 4,
            "repaired": 1,
            "last_delivered_at": 200.0,
            "last_failure_at": 190.0,
            "last_failure": "rejected: HTTP 200, OCPI 2001",
        }
    }


def test_pulls_are_stamped_at_most_once_per_interval_per_partner_and_module() -> None:
    clock = [1000.0]
    stamps = PullStamps(None, every_s=30, clock=lambda: clock[0])  # type: ignore[arg-type]
    assert stamps.due("P1", "locations") == 1000.0
    assert stamps.due("P1", "locations") is None
    assert stamps.due("P1", "tariffs") == 1000.0
    assert stamps.due("P2", "locations") == 1000.0
    clock[0] += 30
    assert stamps.due("P1", "locations") == 1030.0


def test_a_partner_row_shows_pushes_pulls_and_backlog() -> None:
    partner = {
        "partner_id": "PEE-LINK",
        "status": "registered",
        "direction": "outbound",
        "version": "2.2.1",
        "versions_url": "https://peer.example/ocpi/versions",
        "roles": [
            {
                "role": "CPO",
                "country_code": "NL",
                "party_id": "PEE",
                "business_details": {"name": "Peer"},
            }
        ],
        "endpoints": [
            {"identifier": "cdrs", "role": "RECEIVER", "url": "https://peer.example/cdrs"}
        ],
    }
    stats = {
        "cdrs": {"delivered": 3, "failures": 0, "last_delivered_at": 940.0},
        "locations": {
            "delivered": 0,
            "failures": 2,
            "last_failure_at": 990.0,
            "last_failure": "retrying: HTTP 503",
        },
        "pull-tariffs": {"last_pulled_at": 400.0},
    }
    row = partner_row(partner, stats, {"cdrs": 0, "locations": 5, "sessions": None}, 1000.0)
    assert row["roles"] == [{"role": "CPO", "party": "NL-PEE", "name": "Peer"}]
    assert [(p["module"], p["last_ok"], p["backlog"]) for p in row["pushes"]] == [
        ("cdrs", "60 s ago", 0),
        ("locations", "never", 5),
        ("sessions", "never", None),
    ]
    assert row["pushes"][1]["last_failure_ago"] == "10 s ago"
    assert row["pulls"] == [{"module": "tariffs", "last": "10 min ago"}]
    assert row["failing"] and row["backlog_total"] == 5
    empty = partner_row({"partner_id": "NEW", "status": "invited"}, {}, {}, 1000.0)
    assert (empty["pushes"], empty["pulls"], empty["failing"]) == ([], [], False)


# --- locations ------------------------------------------------------------------------


def _loc(**fields: Any) -> dict[str, Any]:
    return {
        "id": "LOC1",
        "country_code": "ZZ",
        "party_id": "HUB",
        "name": "Depot",
        "address": "Main St 1",
        "city": "Town",
        "country": "NLD",
        "coordinates": {"latitude": "52.1", "longitude": "4.3"},
        "evses": [{"uid": "E1", "status": "AVAILABLE"}, {"uid": "E2", "status": "CHARGING"}],
        "last_updated": "2026-06-01T12:00:00Z",
        **fields,
    }


def test_a_location_is_a_pin_only_with_coordinates_on_the_earth() -> None:
    pin = location_pin(_loc())
    assert pin == {
        "lat": 52.1,
        "lon": 4.3,
        "name": "Depot",
        "href": "/admin/locations/ZZ/HUB/LOC1",
        "available": 1,
        "evses": 2,
    }
    assert location_pin(_loc(coordinates=None)) is None
    assert location_pin(_loc(coordinates={"latitude": "91", "longitude": "0"})) is None
    assert location_pin(_loc(coordinates={"latitude": "x", "longitude": "0"})) is None
    row = location_row(_loc())
    assert (row["address"], row["available"], row["evses"]) == ("Main St 1, Town, NLD", 1, 2)


def _put(evses: list[dict[str, Any]], at: str) -> LocationObjectPut:
    return LocationObjectPut.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "aggregate_key": "ZZ/HUB/LOC1",
            "occurred_at": at,
            "recorded_at": at,
            "source": {"country_code": "ZZ", "party_id": "HUB"},
            "correlation_id": "c",
            "payload": {
                "country_code": "ZZ",
                "party_id": "HUB",
                "location_id": "LOC1",
                "object": {"id": "LOC1", "evses": evses},
                "last_updated": at,
            },
        }
    )


def _patch(evse_uid: str | None, patch: dict[str, Any], at: str) -> LocationObjectPatched:
    return LocationObjectPatched.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "aggregate_key": "ZZ/HUB/LOC1",
            "occurred_at": at,
            "recorded_at": at,
            "source": {"country_code": "ZZ", "party_id": "HUB"},
            "correlation_id": "c",
            "payload": {
                "country_code": "ZZ",
                "party_id": "HUB",
                "location_id": "LOC1",
                "evse_uid": evse_uid,
                "patch": {**patch, "last_updated": at},
                "last_updated": at,
            },
        }
    )


def test_status_history_lists_each_change_newest_first() -> None:
    events = [
        _put(
            [{"uid": "E1", "status": "AVAILABLE"}, {"uid": "E2", "status": "AVAILABLE"}],
            "2026-06-01T10:00:00Z",
        ),
        _patch("E1", {"status": "CHARGING"}, "2026-06-01T10:05:00Z"),
        _patch("e1", {"status": "CHARGING"}, "2026-06-01T10:06:00Z"),  # no change
        _patch("E1", {"max_reservation": 5}, "2026-06-01T10:07:00Z"),  # no status
        _patch(None, {"name": "Depot"}, "2026-06-01T10:08:00Z"),
        _patch("E2", {"status": "OUTOFORDER"}, "2026-06-01T10:09:00Z"),
    ]
    rows = status_history(events)
    assert [(r["evse_uid"], r["before"], r["status"], r["how"]) for r in rows] == [
        ("E2", "AVAILABLE", "OUTOFORDER", "updated"),
        ("E1", "AVAILABLE", "CHARGING", "updated"),
        ("E2", "", "AVAILABLE", "replaced"),
        ("E1", "", "AVAILABLE", "replaced"),
    ]
    assert rows[0]["at"] == "2026-06-01 10:09:00 UTC"
    assert status_history([]) == []


def test_a_token_row_says_our_policy_in_words() -> None:
    ours = {"uid": "T1", "type": "RFID", "country_code": "ZZ", "party_id": "HUB",
            "contract_id": "ZZ-HUB-C1", "issuer": "Hub", "valid": True, "whitelist": "ALWAYS",
            "last_updated": "2026-06-01T12:00:00Z"}  # fmt: skip
    policy = {"state": "BLOCKED", "expires_at": "2026-12-31T00:00:00Z", "location_ids": ["L1"]}
    row = token_row(ours, policy, ours=True)
    assert (row["party"], row["state"]) == ("ZZ-HUB", "BLOCKED")
    assert row["rules"] == "expires 2026-12-31 00:00:00 UTC; only at L1"
    assert token_row(ours, None, ours=True)["state"] == "ALLOWED"  # no policy: allowed
    theirs = token_row({**ours, "country_code": "NL", "party_id": "PEE"}, None, ours=False)
    assert (theirs["state"], theirs["rules"], theirs["ours"]) == ("", "", False)


# --- charts ---------------------------------------------------------------------------


SAMPLES = [
    {"at": 0.0, "statuses": {"AVAILABLE": 3}, "accepted": 100, "lag": {"t.locations": 0}},
    {"at": 60.0, "statuses": {"AVAILABLE": 2, "CHARGING": 1}, "accepted": 220,
     "lag": {"t.locations": 5}},
    {"at": 120.0, "statuses": {"AVAILABLE": 2, "CHARGING": 1}},  # the log could not be asked
    {"at": 240.0, "statuses": {"CHARGING": 3}, "accepted": 400, "lag": {"t.locations": 0}},
]  # fmt: skip


def test_series_come_from_the_samples_and_rates_from_differences() -> None:
    assert status_series(SAMPLES)["AVAILABLE"] == [(0.0, 3.0), (60.0, 2.0), (120.0, 2.0)]
    assert status_series(SAMPLES)["CHARGING"][-1] == (240.0, 3.0)
    # 120 events in the first minute; none across the sample without a count.
    assert accepted_per_minute(SAMPLES) == {"events/min": [(60.0, 120.0)]}
    assert accepted_per_minute(SAMPLES[:1]) == {}
    assert lag_series(SAMPLES) == {"t.locations": [(0.0, 0.0), (60.0, 5.0), (240.0, 0.0)]}
    groups = {
        "p-projections": {"role": "projections", "lag_per_topic": {"t.a": 2, "t.b": 1}},
        "p-projections-2": {"role": "projections", "lag_per_topic": {"t.a": 3}},
        "p-processors": {"role": "processors", "lag_per_topic": {"t.a": 50}},
    }
    assert projection_lag(groups) == {"t.a": 5, "t.b": 1}


def test_charts_are_svg_with_escaped_labels_and_nothing_without_data() -> None:
    drawn = str(line_chart({"<b>x</b>": [(0.0, 1.0), (60.0, 4.0)]}, "T"))
    assert drawn.startswith('<svg class="chart"') and "<polyline" in drawn
    assert "&lt;b&gt;x&lt;/b&gt;" in drawn and "<b>" not in drawn
    assert "<circle" in str(line_chart({"one": [(0.0, 2.0)]}, "T"))  # a lone point: a dot
    assert str(line_chart({}, "T")) == ""
    bars = str(bar_chart([("P1", 0.0), ("P<2>", 7.0)], "F"))
    assert bars.index("P&lt;2&gt;") < bars.index("P1")  # largest first
    assert str(bar_chart([], "F")) == ""


def test_status_history_shows_what_our_chargers_made_of_an_evse() -> None:
    """Owner statements (ops when the owner is us, else partner) and the
    statuses resolved from our chargers' facts, in one list newest first;
    entries the owner's statements resolved are not repeated."""
    events = [
        _put([{"uid": "E1", "status": "AVAILABLE"}], "2026-06-01T10:00:00Z"),
        _patch("E1", {"status": "BLOCKED"}, "2026-06-01T10:30:00Z"),
    ]
    # As the evse_status_history view hands them: newest first, naive UTC.
    derived = [
        {"evse_uid": "E1", "status": "OUTOFORDER", "reported_status": "BLOCKED",
         "signal": "owner", "last_updated": datetime(2026, 6, 1, 10, 30)},
        {"evse_uid": "E1", "status": "OUTOFORDER", "reported_status": "AVAILABLE",
         "signal": "charger", "last_updated": datetime(2026, 6, 1, 10, 10)},
        {"evse_uid": "E1", "status": "AVAILABLE", "reported_status": "AVAILABLE",
         "signal": None, "last_updated": datetime(2026, 6, 1, 10, 0)},
    ]  # fmt: skip
    rows = status_history(events, derived, us=("ZZ", "HUB"))
    assert [(r["status"], r["before"], r["source"]) for r in rows] == [
        ("BLOCKED", "OUTOFORDER", "ops"),
        ("OUTOFORDER", "AVAILABLE", "charger"),
        ("AVAILABLE", "", "ops"),
    ]
    assert rows[1]["how"] == "owner says AVAILABLE"
    assert rows[1]["at"] == "2026-06-01 10:10:00 UTC"
    # Someone else's location: its owner is a partner.
    assert {r["source"] for r in status_history(events, us=("NL", "ABC"))} == {"partner"}
    assert len(status_history(events, derived, us=("ZZ", "HUB"), limit=2)) == 2
