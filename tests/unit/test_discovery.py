"""QR station discovery: the EVSE ID's normal form, the public answer built
from a served location and the tariffs we hold, and the HTTP shell with
fakes (404s, the rate limit, no internal fields)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from ipaddress import ip_network
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import _locations, _rate_limiter, _tariffs
from api.public.discovery import (
    client_address,
    find_evse,
    normalise_evse_id,
    public_station,
    tariff_summary,
)
from api.rate_limit import InMemoryRateLimiter
from ocpi_hub.settings import Settings
from producers.log import InMemoryEventLog
from projections.mongo.locations import apply, evse_id_key
from tests.ocpi_objects import connector, evse, location
from tests.tariff_objects import tariff
from tests.unit.factories import put

EVSE_ID = "NL*ABC*E12345*1"


def _served(**fields: Any) -> dict[str, Any]:
    site = location(
        evses=[
            evse(
                "EVSE1",
                evse_id=EVSE_ID,
                connectors=[connector("1", tariff_ids=["TAR-1", "NOPE"], max_electric_power=22000)],
            ),
            evse("EVSE2", "REMOVED", evse_id="NL*ABC*E99999*1"),
        ],
        postal_code="3511 CE",
        name="Stationsplein",
        operator={"name": "ABC Charging", "website": "https://abc.example", "logo": None},
        suboperator={"name": "Sub"},
        **fields,
    )
    return site


@pytest.mark.parametrize(
    "raw", ["NL*ABC*E12345*1", "nlabce123451", "nl*abc*e12345*1", "NLABCE123451"]
)
def test_evse_ids_fold_to_one_form(raw: str) -> None:
    assert normalise_evse_id(raw) == evse_id_key(raw) == "NLABCE123451"


def test_the_view_fold_indexes_the_evse_ids_of_served_evses() -> None:
    doc = apply(None, put(_served()))
    assert doc is not None
    assert doc["_evse_ids"] == ["NLABCE123451", "NLABCE999991"]


def test_tariff_summary_takes_the_first_price_of_each_type() -> None:
    summary = tariff_summary(tariff())
    assert summary == {
        "id": "TAR-1",
        "currency": "EUR",
        "prices": {
            "FLAT": {"excl_vat": 0.75, "incl_vat": 0.9075},
            "ENERGY": {"excl_vat": 0.3175, "incl_vat": 0.384175},
            "PARKING_TIME": {"excl_vat": 2.4, "incl_vat": 2.904},
        },
    }
    no_vat = tariff_summary(
        {
            "id": "T",
            "currency": "EUR",
            "elements": [{"price_components": [{"type": "TIME", "price": 2}]}],
        }
    )
    assert no_vat["prices"] == {"TIME": {"excl_vat": 2}}


def test_public_station_shows_an_allow_list_only() -> None:
    site = _served()
    found = find_evse([site], "nlabce123451")
    assert found is not None
    station = public_station(*found, {"TAR-1": tariff()})
    assert station["name"] == "Stationsplein"
    assert station["postal_code"] == "3511 CE"
    assert station["operator"] == {"name": "ABC Charging"}
    assert station["evse"]["uid"] == "EVSE1"
    assert station["evse"]["status"] == "AVAILABLE"
    [conn] = station["evse"]["connectors"]
    assert conn["max_electric_power"] == 22000
    assert [t["id"] for t in conn["tariffs"]] == ["TAR-1"]  # NOPE is not held
    assert "tariff_ids" not in conn and "last_updated" not in conn
    for hidden in ("suboperator", "party_id", "country_code", "id", "publish", "evses"):
        assert hidden not in station


def test_unpublished_and_removed_are_not_found() -> None:
    assert find_evse([_served(publish=False)], EVSE_ID) is None
    assert find_evse([_served()], "NL*ABC*E99999*1") is None  # REMOVED
    assert find_evse([_served()], "NL*ABC*E00000*1") is None
    site = _served()
    del site["publish"]
    assert find_evse([site], EVSE_ID) is not None  # absent: published


class FakeLocations:
    def __init__(self, held: list[dict[str, Any]]) -> None:
        self.held = held

    async def by_evse_id(self, evse_id: str, limit: int = 10) -> list[dict[str, Any]]:
        key = evse_id_key(evse_id)
        return [
            loc
            for loc in self.held
            if any(evse_id_key(e.get("evse_id") or "") == key for e in loc["evses"])
        ]


class FakeTariffs:
    async def get(self, country_code: str, party_id: str, tariff_id: str) -> dict[str, Any] | None:
        return tariff(tariff_id) if tariff_id == "TAR-1" else None


HIDDEN = _served(id="HIDDEN", publish=False)
HIDDEN["evses"][0]["evse_id"] = "NL*ABC*E55555*1"


@pytest.fixture
def limiter() -> InMemoryRateLimiter:
    return InMemoryRateLimiter()


@pytest.fixture
def client(limiter: InMemoryRateLimiter) -> Iterator[TestClient]:
    settings = Settings(public_rate_limit_requests=5, public_rate_limit_window_s=60)
    app = create_app(settings, event_log=InMemoryEventLog())
    app.dependency_overrides[_locations] = lambda: FakeLocations([_served(), HIDDEN])
    app.dependency_overrides[_tariffs] = FakeTariffs
    app.dependency_overrides[_rate_limiter] = lambda: limiter
    with TestClient(app) as c:
        yield c


def test_get_answers_the_public_station_without_a_token(client: TestClient) -> None:
    resp = client.get("/public/evses/nlabce123451")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status_code"] == 1000
    data = body["data"]
    assert data["evse"]["evse_id"] == EVSE_ID
    assert data["evse"]["connectors"][0]["tariffs"][0]["prices"]["ENERGY"]["excl_vat"] == 0.3175
    text = json.dumps(body)
    for forbidden in ("_positions", "token", "suboperator", "website", "tariff_ids", "party_id"):
        assert forbidden not in text


@pytest.mark.parametrize("evse_id", ["NL*ABC*E00000*1", "NL*ABC*E55555*1", "NL*ABC*E99999*1"])
def test_unknown_unpublished_or_removed_is_404_2003(client: TestClient, evse_id: str) -> None:
    resp = client.get(f"/public/evses/{evse_id}")
    assert resp.status_code == 404
    body = resp.json()
    assert body["status_code"] == 2003
    assert evse_id in body["status_message"]
    assert "data" not in body


def test_malformed_id_is_400_2001(client: TestClient) -> None:
    resp = client.get("/public/evses/NL-ABC!")
    assert (resp.status_code, resp.json()["status_code"]) == (400, 2001)


def test_over_the_limit_is_429_with_retry_after(client: TestClient) -> None:
    for _ in range(5):
        assert client.get(f"/public/evses/{EVSE_ID}").status_code == 200
    resp = client.get(f"/public/evses/{EVSE_ID}")
    assert resp.status_code == 429
    assert resp.json()["status_code"] == 2000
    assert 0 < int(resp.headers["Retry-After"]) <= 60


async def test_in_memory_limiter_opens_a_new_window() -> None:
    now = [0.0]
    limiter = InMemoryRateLimiter(clock=lambda: now[0])
    assert [(await limiter.hit("a", 2, 10)).allowed for _ in range(3)] == [True, True, False]
    assert (await limiter.hit("b", 2, 10)).allowed  # per client
    now[0] = 10.0
    assert (await limiter.hit("a", 2, 10)).allowed


# --- the client a request is counted against ---------------------------------

_PROXIES = [ip_network("10.0.0.0/8"), ip_network("fd00::/8")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # No proxy of ours: the header is the client's own claim.
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),
        # Through our proxy: the address it saw.
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        # A client spoofing a left-hand entry is not believed.
        ("10.0.0.2", "1.2.3.4, 198.51.100.1", "198.51.100.1"),
        # Two of our proxies in a row: the first address before them.
        ("10.0.0.2", "1.2.3.4, 198.51.100.1, 10.0.0.9", "198.51.100.1"),
        # Our proxy without the header: the proxy itself.
        ("10.0.0.2", None, "10.0.0.2"),
        # Garbage right of the client stops the walk at what our proxy gave.
        ("10.0.0.2", "198.51.100.1, not-an-ip", "10.0.0.2"),
        ("fd00::1", "2001:db8::5", "2001:db8::5"),
        (None, "198.51.100.1", "unknown"),
    ],
)
def test_client_address_trusts_only_our_proxies(
    peer: str | None, forwarded: str | None, expected: str
) -> None:
    assert client_address(peer, forwarded, _PROXIES) == expected


def test_without_trusted_proxies_forwarded_for_is_ignored() -> None:
    assert client_address("10.0.0.2", "198.51.100.1", []) == "10.0.0.2"
