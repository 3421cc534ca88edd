"""The AFIR feed on the running platform (docs/afir.md): a location we
publish appears in the static pull feed; an EVSE status change, stated by
us as owner or reported by our charger over OCPP, appears in the dynamic
feed and reaches the access point's push endpoint (a local receiver of this
test), with our client credential; every publication valid against our
schema of the feed. The platform runs with the access point configured
(pull token and basic credential, push URL and token)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from ocpp.v16 import call
from pydantic import SecretStr
from pymongo import MongoClient

from bench.ocpp_sim import bench_password, connect_charger, register
from ocpi_hub.bootstrap import drop_mysql_database
from ocpi_hub.settings import Settings
from schemas.afir import feed_schema
from tests.afir_receiver import AfirReceiver, afir_receiver
from tests.conftest import fresh_namespace
from tests.e2e.conftest import Platform, ops_auth, running_platform
from tests.e2e.test_walking_skeleton import wait_for
from tests.ocpi_objects import connector, evse, location

PULL = "afir-pull-token"
PUSH = "afir-push-token"
VALIDATOR = jsonschema.Draft202012Validator(feed_schema())


@pytest.fixture(scope="module")
def receiver() -> Iterator[AfirReceiver]:
    with afir_receiver() as r:
        yield r


@pytest.fixture(scope="module")
def afir_platform(
    services: Settings, tmp_path_factory: pytest.TempPathFactory, receiver: AfirReceiver
) -> Iterator[Platform]:
    with (
        fresh_namespace(services) as ns,
        running_platform(
            ns,
            tmp_path_factory.mktemp("afir-logs"),
            afir_pull_token=SecretStr(PULL),
            afir_pull_user="nap",
            afir_pull_password=SecretStr("nap-pw"),
            afir_push_url=receiver.url,
            afir_push_token=SecretStr(PUSH),
            afir_push_retry_initial_s=0.2,
        ) as p,
    ):
        yield p


def feed(p: Platform, kind: str, **params: str) -> dict[str, Any]:
    resp = httpx.get(
        f"{p.base_url}/afir/v3/{kind}",
        params=params,
        headers={"Authorization": f"Bearer {PULL}"},
        timeout=10,
    )
    if kind == "static" and resp.status_code == 204:
        assert resp.content == b""
        return {}  # no site to publish: no publication
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert list(VALIDATOR.iter_errors(body)) == []
    return body


def sites(body: dict[str, Any]) -> list[dict[str, Any]]:
    if not body:
        return []
    table = body["payload"]["aegiEnergyInfrastructureTablePublication"]
    found: list[dict[str, Any]] = table["energyInfrastructureTable"][0]["energyInfrastructureSite"]
    return found


def point_statuses(body: dict[str, Any], site_id: str) -> dict[str, str]:
    pub = body["payload"].get("aegiEnergyInfrastructureStatusPublication")
    out: dict[str, str] = {}
    for site in pub["energyInfrastructureSiteStatus"] if pub else ():
        if site["reference"]["idG"] != site_id:
            continue
        for station in site["energyInfrastructureStationStatus"]:
            for p in station["refillPointStatus"]:
                point = p["aegiElectricChargingPointStatus"]
                out[point["reference"]["idG"]] = point["status"]["value"]
    return out


def pushed_status(receiver: AfirReceiver, site_id: str, point_id: str) -> str | None:
    for body in reversed(receiver.bodies()):
        assert list(VALIDATOR.iter_errors(body)) == []
        status = point_statuses(body, site_id).get(point_id)
        if status is not None:
            return status
    return None


def put_site(p: Platform, loc: str, **fields: Any) -> None:
    body = location(
        loc,
        country_code="ZZ",
        party_id="HUB",
        evses=[evse("E1", evse_id=f"ZZ*HUB*E{loc}", connectors=[connector("1")])],
        **fields,
    )
    made = httpx.put(
        f"{p.base_url}/ops/locations/{loc}", json=body, headers=ops_auth(p.base_url), timeout=10
    )
    assert made.json()["status_code"] == 1000, made.text


def patch_site(p: Platform, path: str, **fields: Any) -> None:
    patched = httpx.patch(
        f"{p.base_url}/ops/locations/{path}", json=fields, headers=ops_auth(p.base_url), timeout=10
    )
    assert patched.json()["status_code"] == 1000, patched.text


def test_the_feed_needs_the_access_point_credential(afir_platform: Platform) -> None:
    url = f"{afir_platform.base_url}/afir/v3/static"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401
    basic = base64.b64encode(b"nap:nap-pw").decode()
    allowed = httpx.get(url, headers={"Authorization": f"Basic {basic}"}, timeout=10)
    assert allowed.status_code in (200, 204), allowed.text  # 204: no site published yet
    # The credential is in no log line of the API.
    assert PULL not in (afir_platform.logs / "api.log").read_text(errors="replace")


def test_a_published_location_is_in_the_static_feed_and_an_unpublished_one_is_not(
    afir_platform: Platform,
) -> None:
    shown, hidden = f"AF-{uuid.uuid4().hex[:6].upper()}", f"AH-{uuid.uuid4().hex[:6].upper()}"
    put_site(afir_platform, shown, name="Station Nord")
    put_site(afir_platform, hidden, publish=False)
    site_id = f"ZZ-HUB-{shown}"
    found = wait_for(
        lambda: [s for s in sites(feed(afir_platform, "static")) if s["idG"] == site_id],
        "the site in the static feed",
    )
    assert found[0]["name"]["values"][0]["value"] == "Station Nord"
    ids = {s["idG"] for s in sites(feed(afir_platform, "static"))}
    assert f"ZZ-HUB-{hidden}" not in ids
    # A delta from after every change holds no site: no publication (a
    # table of none is not valid in the model), HTTP 204.
    later = httpx.get(
        f"{afir_platform.base_url}/afir/v3/static",
        params={"since": "2099-01-01T00:00:00Z"},
        headers={"Authorization": f"Bearer {PULL}"},
        timeout=10,
    )
    assert later.status_code == 204, later.text
    assert later.content == b""


def test_a_status_change_reaches_the_dynamic_feed_and_the_push_endpoint(
    afir_platform: Platform, receiver: AfirReceiver
) -> None:
    loc = f"AS-{uuid.uuid4().hex[:6].upper()}"
    put_site(afir_platform, loc)
    site_id, point_id = f"ZZ-HUB-{loc}", f"ZZ*HUB*E{loc}"
    wait_for(
        lambda: (
            point_statuses(feed(afir_platform, "dynamic"), site_id).get(point_id) == "available"
        ),
        "the new EVSE available in the dynamic feed",
    )
    patch_site(afir_platform, f"{loc}/E1", status="OUTOFORDER", last_updated="2026-06-01T10:00:00Z")
    wait_for(
        lambda: (
            point_statuses(feed(afir_platform, "dynamic"), site_id).get(point_id) == "outOfOrder"
        ),
        "OUTOFORDER in the dynamic feed",
    )
    wait_for(
        lambda: pushed_status(receiver, site_id, point_id) == "outOfOrder",
        "OUTOFORDER at the push endpoint",
    )
    with receiver.lock:
        assert {auth for _, auth, _ in receiver.received} == {f"Bearer {PUSH}"}


def test_a_charger_fault_over_ocpp_reaches_the_feed_and_the_push_endpoint(
    afir_platform: Platform, receiver: AfirReceiver
) -> None:
    loc = f"AO-{uuid.uuid4().hex[:6].upper()}"
    put_site(afir_platform, loc)
    site_id, point_id = f"ZZ-HUB-{loc}", f"ZZ*HUB*E{loc}"
    asyncio.run(_fault(afir_platform, loc))
    wait_for(
        lambda: (
            point_statuses(feed(afir_platform, "dynamic"), site_id).get(point_id) == "outOfOrder"
        ),
        "the charger's fault in the dynamic feed",
    )
    wait_for(
        lambda: pushed_status(receiver, site_id, point_id) == "outOfOrder",
        "the charger's fault at the push endpoint",
    )


async def _fault(p: Platform, loc: str) -> None:
    """Our charger for the location's E1 connects (once the gateway knows
    its registration), boots, and reports a fault."""
    cp_id, password = f"AFIR-CP-{uuid.uuid4().hex[:6].upper()}", bench_password()
    async with httpx.AsyncClient(base_url=p.base_url, headers=ops_auth(p.base_url)) as ops:
        await register(ops, cp_id, loc, "E1", password)
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        try:
            connected = await connect_charger(p.gateway_url, cp_id, password)
            break
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
    try:
        await connected.charger.call(
            call.StatusNotification(connector_id=1, error_code="GroundFailure", status="Faulted")
        )
    finally:
        await connected.close()


def test_a_site_no_longer_published_is_withdrawn_in_deltas_and_at_the_push_endpoint(
    afir_platform: Platform, receiver: AfirReceiver
) -> None:
    loc = f"AW-{uuid.uuid4().hex[:6].upper()}"
    put_site(afir_platform, loc)
    site_id, point_id = f"ZZ-HUB-{loc}", f"ZZ*HUB*E{loc}"
    wait_for(
        lambda: pushed_status(receiver, site_id, point_id) == "available",
        "the new site at the push endpoint",
    )
    patch_site(afir_platform, loc, publish=False, last_updated="2026-06-02T10:00:00Z")
    wait_for(
        lambda: pushed_status(receiver, site_id, point_id) == "removed",
        "the withdrawal at the push endpoint",
    )
    since = {"since": "2026-06-02T09:59:00Z"}
    assert point_statuses(feed(afir_platform, "dynamic", **since), site_id) == {point_id: "removed"}
    # The whole feeds no longer hold it at all.
    assert site_id not in {s["idG"] for s in sites(feed(afir_platform, "static"))}
    assert point_statuses(feed(afir_platform, "dynamic"), site_id) == {}


def test_the_kept_2_3_0_fields_and_the_energy_mix_reach_the_static_feed(
    afir_platform: Platform,
) -> None:
    """Our ops write a location with OCPI 2.3.0's help_phone and
    parking_places (kept as received), an energy mix, a parking type and an
    exceptional closing; the static feed shows each (docs/afir.md)."""
    loc = f"AK-{uuid.uuid4().hex[:6].upper()}"
    closing = {"period_begin": "2026-12-25T00:00:00Z", "period_end": "2026-12-26T00:00:00Z"}
    put_site(
        afir_platform,
        loc,
        operator={"name": "Hub Charging"},
        help_phone="+31301234567",
        parking_type="UNDERGROUND_GARAGE",
        parking_places=[
            {
                "id": "P1",
                "vehicle_types": ["PERSONAL_VEHICLE"],
                "restricted_to_type": False,
                "reservation_required": False,
                "roofed": True,
            }
        ],
        energy_mix={
            "is_green_energy": True,
            "energy_sources": [{"source": "WIND", "percentage": 100}],
        },
        opening_times={"twentyfourseven": True, "exceptional_closings": [closing]},
    )
    site_id = f"ZZ-HUB-{loc}"
    [site] = wait_for(
        lambda: [s for s in sites(feed(afir_platform, "static")) if s["idG"] == site_id],
        "the site in the static feed",
    )
    assert site["typeOfSite"] == {"value": "inBuilding"}
    overall = site["operatingHours"]["afacOperatingHoursSpecification"]["overallPeriod"]
    assert overall["exceptionPeriod"] == [
        {"startOfPeriod": "2026-12-25T00:00:00Z", "endOfPeriod": "2026-12-26T00:00:00Z"}
    ]
    [station] = site["energyInfrastructureStation"]
    unit = station["helpdesk"]["afacAnOrganisation"]["organisationUnit"][0]
    assert unit["contactInformation"] == [
        {"afacContactInformation": {"telephoneNumber": "+31301234567"}}
    ]
    [space] = station["dedicatedParkingSpaces"]
    assert space["idG"] == f"{site_id}-PARKING-P1" and space["amenities"] == {"roofed": True}
    [point] = station["refillPoint"]
    charging_point = point["aegiElectricChargingPoint"]
    # The EVSE ID as the profile types it (what NAP readers look up).
    assert charging_point["externalIdentifier"][0] == {
        "identifier": f"ZZ*HUB*E{loc}",
        "typeOfIdentifier": {"value": "extendedG", "extendedValueG": "evseId"},
    }
    assert charging_point["currentType"] == {"value": "ac"}
    [energy] = charging_point["electricEnergy"]
    assert energy["isGreenEnergy"] is True
    # The sources' shares have no element in the profile: not published.
    assert "electricEnergySourceRatio" not in energy


def test_a_replay_rebuilds_the_afir_view_as_it_is_live(afir_platform: Platform) -> None:
    """Runs after the tests above: the view holds their sites, statuses and
    the charger's fault; a replay into a scratch namespace compares equal."""
    into = f"r{uuid.uuid4().hex[:8]}"
    settings = afir_platform.namespace.settings
    with MongoClient(settings.mongo_url) as client:
        live = client[afir_platform.namespace.name]
        assert live["afir_sites"].count_documents({"static": {"$ne": None}}) >= 3
        try:
            result = afir_platform.run("replay", "--into", into, "--compare")
            assert result.returncode == 0, result.stdout + result.stderr[-3000:]
            assert json.loads(result.stdout.strip().splitlines()[-1])["differences"] == []
            assert client[into]["afir_sites"].count_documents({}) == live[
                "afir_sites"
            ].count_documents({})
        finally:
            client.drop_database(into)
            drop_mysql_database(settings, into)
