"""Issue 12's bad inputs, sent to a running platform: each is refused with a
clear error naming the field (or HTTP 413), nothing of it reaches the topic,
and the platform goes on serving every other write (docs/adr/0027).

Partner (peer) and ops bodies take the same decoding and checks; the
partner's Locations receiver, the ops routes and the Tariffs receiver are
all exercised here.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson

from producers.log import KafkaLogHistory
from schemas.topics import LOCATIONS, TARIFFS, TopicSpec
from tests.e2e.conftest import Linked, ops_auth
from tests.e2e.test_walking_skeleton import wait_for
from tests.ocpi_objects import connector, evse, location
from tests.tariff_objects import tariff_json

FORTY_DIGITS = "1234567890123456789012345678901234567890"
JSON = {"Content-Type": "application/json"}
PEER_LOCATIONS = "/ocpi/emsp/2.2.1/locations/NL/PEE"
PEER_TARIFFS = "/ocpi/emsp/2.2.1/tariffs/NL/PEE"


def _keys_in(linked: Linked, topic: TopicSpec) -> set[str]:
    """The aggregate keys of every event the topic holds, read from Kafka."""
    settings = linked.us.namespace.settings
    history = KafkaLogHistory(settings.kafka_bootstrap, settings.topic_prefix)

    async def scan() -> set[str]:
        return {event.aggregate_key async for _, _, event in history.scan(topic)}

    return asyncio.run(scan())


def _refused(resp: httpx.Response, field: str, http_status: int = 200) -> None:
    assert resp.status_code == http_status, resp.text
    body = resp.json()
    assert body["status_code"] == 2001, body
    assert field in body["status_message"], body


def test_the_issues_bad_inputs_are_refused_and_nothing_is_recorded(linked: Linked) -> None:
    run = uuid.uuid4().hex[:6].upper()
    poison, future, big, tariff_id = (f"{name}-{run}" for name in ("POISON", "FUTURE", "BIG", "T"))
    peer = httpx.Client(base_url=linked.us.base_url, timeout=60, headers=linked.peer_token)
    ops = httpx.Client(
        base_url=linked.us.base_url, timeout=60, headers=ops_auth(linked.us.base_url)
    )

    # A connector max_voltage of 40 digits, at the partner's receiver and ops.
    text = orjson.dumps(location(poison, country_code="NL", party_id="PEE")).decode()
    text = text.replace('"max_voltage":230', f'"max_voltage":{FORTY_DIGITS}')
    resp = peer.put(f"{PEER_LOCATIONS}/{poison}", content=text, headers=JSON)
    _refused(resp, "evses.0.connectors.0.max_voltage")
    ours = orjson.dumps(location(poison, country_code="ZZ", party_id="HUB")).decode()
    ours = ours.replace('"max_voltage":230', f'"max_voltage":{FORTY_DIGITS}')
    _refused(ops.put(f"/ops/locations/{poison}", content=ours, headers=JSON), "max_voltage")

    # A tariff price of 1e400.
    elements = '[{"price_components": [{"type": "ENERGY", "price": 1e400, "step_size": 1}]}]'
    body = tariff_json(tariff_id, country_code="NL", party_id="PEE", elements=elements)
    resp = peer.put(f"{PEER_TARIFFS}/{tariff_id}", content=body, headers=JSON)
    _refused(resp, "elements.0.price_components.0.price")

    # last_updated in 2999: a PUT, and a PATCH of an EVSE that exists.
    dated = location(future, country_code="NL", party_id="PEE", at="2999-01-01T00:00:00Z")
    _refused(peer.put(f"{PEER_LOCATIONS}/{future}", json=dated), "last_updated")
    real = location(future, country_code="NL", party_id="PEE", evses=[evse("E1")])
    assert peer.put(f"{PEER_LOCATIONS}/{future}", json=real).status_code == 201
    frozen = {"status": "CHARGING", "last_updated": "2999-01-01T00:00:00Z"}
    _refused(peer.patch(f"{PEER_LOCATIONS}/{future}/E1", json=frozen), "last_updated")

    # A location of 20,000 EVSEs (5.6 MB): HTTP 413 before it is read.
    huge = location(
        big,
        country_code="NL",
        party_id="PEE",
        evses=[evse(f"EVSE-{i:05d}", connectors=[connector("1")]) for i in range(20_000)],
    )
    raw = orjson.dumps(huge)
    assert len(raw) > 5_000_000
    _refused(peer.put(f"{PEER_LOCATIONS}/{big}", content=raw, headers=JSON), "too large", 413)

    # The issue's cursor: a clear 2001, not a MySQL 500.
    for path in ("/ops/evses", "/ops/sites"):
        resp = ops.get(f"{path}?after=%C3%94")
        _refused(resp, "after", 400)

    # Nothing of any of it reached the topics: only FUTURE's real PUT.
    location_keys = _keys_in(linked, LOCATIONS)
    assert f"NL/PEE/{future}" in location_keys
    assert not {f"NL/PEE/{poison}", f"ZZ/HUB/{poison}", f"NL/PEE/{big}"} & location_keys
    assert f"NL/PEE/{tariff_id}" not in _keys_in(linked, TARIFFS)

    # The platform goes on: a real update after the refused 2999 one is
    # applied, and reaches the OCPI view and the MySQL rows.
    update = {"status": "CHARGING", "last_updated": "2026-06-01T00:00:00Z"}
    assert peer.patch(f"{PEER_LOCATIONS}/{future}/E1", json=update).json()["status_code"] == 1000

    def shown() -> Any:
        got = peer.get(f"{PEER_LOCATIONS}/{future}/E1").json().get("data") or {}
        return got.get("status") == "CHARGING"

    wait_for(shown, "the real update in the view")

    def in_mysql() -> Any:
        rows = ops.get("/ops/evses", params={"location_id": future}).json()["data"]
        return [r["status"] for r in rows] == ["CHARGING"]

    wait_for(in_mysql, "the real update in the MySQL rows")


ODD = ["%C3%94", "%F0%9F%94%8C", "%FF", "%00", "99999999999999999999999", "-1", "%27"]


def test_odd_query_parameters_are_never_a_500(linked: Linked) -> None:
    """Every query parameter of the lists that reach MySQL or MongoDB."""
    peer = httpx.Client(base_url=linked.us.base_url, timeout=30, headers=linked.peer_token)
    ops = httpx.Client(
        base_url=linked.us.base_url, timeout=30, headers=ops_auth(linked.us.base_url)
    )
    lists = {
        ops: {
            "/ops/evses": ("status", "country_code", "party_id", "location_id", "after", "limit"),
            "/ops/sites": ("country_code", "party_id", "after", "limit"),
            "/ops/commands/sent": ("partner_id", "after", "limit"),
            "/ops/cdrs/reconciliation": ("only_discrepancies",),
            "/ops/tokens/X1": ("type",),
        },
        peer: {
            path: ("date_from", "date_to", "offset", "limit", "cursor")
            for path in (
                "/ocpi/cpo/2.2.1/locations",
                "/ocpi/cpo/2.2.1/tariffs",
                "/ocpi/cpo/2.2.1/cdrs",
                "/ocpi/emsp/2.2.1/tokens",
                "/ocpi/cpo/2.2.1/sessions",
            )
        },
    }
    seen: list[tuple[str, str, str, int]] = []
    for client, paths in lists.items():
        for path, parameters in paths.items():
            for parameter in parameters:
                for value in ODD:
                    resp = client.get(f"{path}?{parameter}={value}")
                    seen.append((path, parameter, value, resp.status_code))
                    assert resp.status_code < 500, (path, parameter, value, resp.text)
                    assert "status_code" in resp.json(), (path, parameter, value, resp.text)
    assert len(seen) == len(ODD) * 40
