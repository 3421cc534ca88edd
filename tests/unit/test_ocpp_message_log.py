"""What the gateway keeps of each OCPP frame for the dashboard
(gateway/message_log.py): token uids masked, secrets gone, a one-line
summary, results labelled with the action of their call, and a queue that
never grows past its bound."""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from api.admin.pages import message_row
from gateway.message_log import (
    SUMMARY_MAX,
    CallTracker,
    MessageLog,
    entry,
    mask_id_tag,
    scrubbed,
    summary,
)


def test_an_id_tag_keeps_only_its_last_four_characters() -> None:
    assert mask_id_tag("04A2B3C4D5E6") == "********D5E6"
    # A short tag still hides at least half of itself.
    assert mask_id_tag("ABC") == "**C"
    assert mask_id_tag("A") == "*"
    assert mask_id_tag("") == ""


def test_scrubbing_masks_tags_and_drops_secrets_at_any_depth() -> None:
    payload = {
        "connectorId": 1,
        "idTag": "04A2B3C4D5E6",
        "idTagInfo": {"status": "Accepted", "parentIdTag": "PARENT-123456"},
        "password": "hunter2",
        "Authorization": "Basic Q1AtMTpzZWNyZXQ=",
    }
    clean = scrubbed(payload)
    assert clean["idTag"] == "********D5E6"
    assert clean["idTagInfo"] == {"status": "Accepted", "parentIdTag": "*********3456"}
    assert clean["password"] == "(hidden)"
    assert clean["Authorization"] == "(hidden)"
    assert clean["connectorId"] == 1
    assert "hunter2" not in json.dumps(clean) and "Q1At" not in json.dumps(clean)
    assert payload["idTag"] == "04A2B3C4D5E6"  # a copy: the frame itself is untouched


def test_a_configuration_value_under_a_secret_key_is_hidden() -> None:
    change = scrubbed({"key": "AuthorizationKey", "value": "0011223344556677"})
    assert change == {"key": "AuthorizationKey", "value": "(hidden)"}
    listed = scrubbed(
        {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "60"},
                              {"key": "AuthorizationKey", "readonly": False, "value": "beef"}]}
    )  # fmt: skip
    assert [k["value"] for k in listed["configurationKey"]] == ["60", "(hidden)"]
    # Vendor data is free-form: only its size is kept.
    assert scrubbed({"vendorId": "acme", "data": "pin=1234"}) == {
        "vendorId": "acme",
        "data": "(10 chars)",
    }


def test_the_summary_is_one_bounded_line() -> None:
    assert summary({"connectorId": 1, "status": "Faulted", "errorCode": "GroundFailure"}) == (
        "connectorId=1 status=Faulted errorCode=GroundFailure"
    )
    assert summary({"idTagInfo": {"status": "Accepted"}, "transactionId": 7}) == (
        "idTagInfo.status=Accepted transactionId=7"
    )
    assert summary({"connectorId": 1, "meterValue": [{}, {}]}) == "connectorId=1 meterValue=[2]"
    assert summary({}) == ""
    long = summary({f"field{n}": "x" * 40 for n in range(20)})
    assert len(long) == SUMMARY_MAX and long.endswith("…")
    assert summary({"info": "y" * 100}) == "info=" + "y" * 40 + "…"


def test_frames_both_ways_with_results_named_by_their_call() -> None:
    calls = CallTracker()
    said = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    status = json.dumps([2, "m1", "StatusNotification", said])
    got = entry(status, "in", calls, 100.0)
    assert got == {
        "at": 100.0,
        "dir": "in",
        "type": "CALL",
        "action": "StatusNotification",
        "id": "m1",
        "summary": "connectorId=1 errorCode=NoError status=Available",
    }
    answer = entry(json.dumps([3, "m1", {}]), "out", calls, 100.1)
    assert (answer["type"], answer["action"], answer["dir"]) == (
        "CALLRESULT",
        "StatusNotification",
        "out",
    )
    # Our call and the charger's answer; an id answered twice is no longer known.
    start = json.dumps([2, "c9", "RemoteStartTransaction", {"connectorId": 1, "idTag": "TAG12345"}])
    assert entry(start, "out", calls, 101.0)["summary"] == "connectorId=1 idTag=****2345"
    failed = entry(json.dumps([4, "c9", "NotSupported", "no", {"cause": "x"}]), "in", calls, 102.0)
    assert (failed["type"], failed["action"]) == ("CALLERROR", "RemoteStartTransaction")
    assert failed["summary"] == "NotSupported: no (cause=x)"
    assert entry(json.dumps([3, "c9", {}]), "in", calls, 103.0)["action"] == ""
    # The same id from the other side does not answer our call.
    assert entry(json.dumps([2, "c9", "Heartbeat", {}]), "in", calls, 104.0)["action"] == (
        "Heartbeat"
    )


def test_a_malformed_frame_is_kept_as_such() -> None:
    calls = CallTracker()
    assert entry("not json", "in", calls, 1.0)["type"] == "MALFORMED"
    assert entry("[9, 1]", "in", calls, 1.0)["summary"] == "not an OCPP frame (6 bytes)"
    assert entry('{"a": 1}', "in", calls, 1.0)["type"] == "MALFORMED"
    assert entry('[2, "x"]', "in", calls, 1.0)["summary"] == "incomplete frame"


def test_unanswered_calls_are_forgotten_beyond_a_bound() -> None:
    calls = CallTracker()
    for n in range(200):
        entry(json.dumps([2, f"u{n}", "Heartbeat", {}]), "in", calls, 1.0)
    assert entry(json.dumps([3, "u0", {}]), "out", calls, 2.0)["action"] == ""
    assert entry(json.dumps([3, "u199", {}]), "out", calls, 2.0)["action"] == "Heartbeat"


def test_the_queue_is_bounded_and_recording_never_waits() -> None:
    # Never connected: recording must not touch Redis at all.
    client = aioredis.Redis(host="127.0.0.1", port=1)
    log = MessageLog(client, "t-", length=50, queue_max=3)
    calls = CallTracker()
    for n in range(5):
        log.frame("CP-1", json.dumps([2, f"q{n}", "Heartbeat", {}]), "in", calls)
    assert log.waiting == 3
    assert log.dropped == 2


def test_the_page_row_of_an_entry() -> None:
    row = message_row({"at": 1_765_000_000.25, "dir": "out", "type": "CALLRESULT",
                       "action": "Heartbeat", "summary": "currentTime=x"})  # fmt: skip
    assert row == {
        "at": "05:46:40.250",
        "day": "2025-12-06",
        "dir": "out",
        "type": "CALLRESULT",
        "action": "Heartbeat",
        "summary": "currentTime=x",
    }
    assert message_row({})["at"] == ""
