"""Our sessions and CDRs, as CPO, reach an eMSP that speaks OCPI 2.1.1 or
2.3.0 (issue 16: "a session and CDR priced and delivered in each version").

Two fresh platforms per version: ours as CPO (party DE-VCP, with its OCPP
gateway) and an eMSP pinned to the version (NL-VEM). The eMSP registers
with us in its version; it issues a token and pushes it to us in that
version, with whitelist NEVER, so our charger's StartTransaction is
authorized in real time by asking the eMSP in its version. A simulated
charger (the ``ocpp`` library) charges; our session and our CDR, priced
with the connector's tariff, are pushed to the eMSP in its version and
the eMSP holds them in its own model: the same session, the same energy,
the same total (2.1.1 carries the total excluding VAT only). Then it pulls
our locations, tariffs, sessions and CDRs from our Sender in its version.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from ocpp.v16 import call

from ocpi_hub.settings import Settings
from tests.cdr_objects import simple_tariff
from tests.conftest import fresh_namespace
from tests.e2e.conftest import (
    Platform,
    auth,
    ops_auth,
    pinned_partner,
    running_platform,
    sealed_token,
)
from tests.e2e.test_charger_path import (
    PASSWORD,
    _mongo,
    _ok,
    _plug,
    _ts,
    meter_and_stop,
    until,
)
from tests.e2e.test_money_path import _dumps, exact, expected_total
from tests.ocpi_objects import connector, evse, location
from tests.token_objects import token

CC, PID = "DE", "VCP"  # our party, as CPO
EMSP_CC, EMSP_PID = "NL", "VEM"
EMSP_ID = "VEM-EMSP"  # our name for the eMSP
CPO_ID = "VCP-CPO"  # the eMSP's name for us


@dataclass(frozen=True)
class Versioned:
    version: str
    cpo: Platform  # ours
    emsp: Platform  # pinned to ``version``


@pytest.fixture(scope="module", params=["2.1.1", "2.3.0"])
def versioned(
    request: pytest.FixtureRequest, services: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Versioned]:
    version: str = request.param
    tag = version.replace(".", "")
    with (
        fresh_namespace(services) as ours,
        running_platform(
            ours,
            tmp_path_factory.mktemp(f"cpo-{tag}-logs"),
            party_country_code=CC,
            party_id=PID,
            business_name="A CPO of ours",
        ) as cpo,
        pinned_partner(
            cpo,
            services,
            tmp_path_factory.mktemp(f"emsp-{tag}-logs"),
            version=version,
            country_code=EMSP_CC,
            party_id=EMSP_PID,
            us_id=EMSP_ID,
            them_id=CPO_ID,
            # 2.1.1 credentials name no role: the eMSP says which role we play.
            their_role="CPO" if version == "2.1.1" else None,
            invited_as="EMSP",
        ) as pinned,
    ):
        yield Versioned(version, cpo, pinned.them)


def _found(platform: Platform, collection: str, query: dict[str, Any]) -> Callable[[], Any]:
    async def read() -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await asyncio.to_thread(
            _mongo(platform)[collection].find_one, query
        )
        return doc

    return read


async def _scene(v: Versioned, tag: str) -> tuple[str, str, dict[str, Any]]:
    """A priced location of ours with a registered charge point, the
    location at the eMSP, and a token of the eMSP's pushed to us."""
    loc, cp_id, tid = f"VL-{tag}", f"VCP-{tag}", f"VT-{tag}"
    async with httpx.AsyncClient(
        base_url=v.cpo.base_url, timeout=20, headers=ops_auth(v.cpo.base_url)
    ) as ops:
        priced = _dumps(simple_tariff(tid, country_code=CC, party_id=PID))
        headers = {"content-type": "application/json"}
        _ok(await ops.put(f"/ops/tariffs/{tid}", content=priced, headers=headers), 200, 201)
        plug = connector("1", tariff_ids=[tid])
        site = location(
            loc,
            country_code=CC,
            party_id=PID,
            evses=[evse("EVSE1", status="UNKNOWN", connectors=[plug], evse_id=f"DE*VCP*E{tag}")],
            postal_code="3511 CE",  # required in 2.1.1 (docs/ocpi-versions.md)
        )
        _ok(await ops.put(f"/ops/locations/{loc}", json=site), 201)
        charger = {
            "location_id": loc,
            "password": PASSWORD,
            "connectors": [{"ocpp_connector_id": 1, "evse_uid": "EVSE1", "connector_id": "1"}],
        }
        _ok(await ops.put(f"/ops/charge-points/{cp_id}", json=charger), 201)
    await until(_found(v.emsp, "locations", {"location.id": loc}), f"{loc} at the {v.version} eMSP")

    uid = f"V{tag}"
    issued = token(uid, country_code=EMSP_CC, party_id=EMSP_PID, whitelist="NEVER")
    async with httpx.AsyncClient(timeout=20) as http:
        made = await http.put(
            f"{v.emsp.base_url}/ops/tokens/{uid}?type=RFID",
            json=issued,
            headers=ops_auth(v.emsp.base_url),
        )
        _ok(made, 201)
    await until(
        _found(v.cpo, "tokens", {"uid": uid, "token": {"$ne": None}}),
        f"the eMSP's token pushed to us in {v.version}",
    )
    return loc, cp_id, issued


async def test_our_session_and_priced_cdr_reach_the_emsp_in_its_version(
    versioned: Versioned,
) -> None:
    v = versioned
    tag = uuid.uuid4().hex[:6].upper()
    loc, cp_id, issued = await _scene(v, tag)
    plugged = await _plug_retrying(v.cpo, cp_id)
    charger = plugged.charger
    try:
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        started = await charger.call(
            call.StartTransaction(
                connector_id=1, id_tag=issued["uid"], meter_start=12_000, timestamp=_ts(start)
            )
        )
        # Authorized in real time by the eMSP, asked in its version.
        assert started.id_tag_info["status"] == "Accepted", started
        await charger.status("Charging")
        ours = await until(
            _found(v.cpo, "sessions", {"session.location_id": loc, "session.status": "ACTIVE"}),
            "our session ACTIVE",
        )
        sid = ours["session"]["id"]
        theirs = await until(
            _found(v.emsp, "sessions", {"session.id": sid, "session.status": "ACTIVE"}),
            f"our session ACTIVE at the {v.version} eMSP",
        )
        held = theirs["session"]
        assert (held["country_code"], held["party_id"]) == (CC, PID)
        assert (held["location_id"], held["evse_uid"], held["connector_id"]) == (
            loc,
            "EVSE1",
            "1",
        )
        assert held["cdr_token"]["contract_id"] == issued["contract_id"]

        await meter_and_stop(charger, started.transaction_id, start, issued["uid"])
        done = await until(
            _found(v.emsp, "sessions", {"session.id": sid, "session.status": "COMPLETED"}),
            f"our session COMPLETED at the {v.version} eMSP",
        )
        assert exact(done["session"]["kwh"]) == Decimal("8.25")

        # Our CDR, priced with the connector's tariff, in the eMSP's model.
        cdr_doc = await until(
            _found(v.emsp, "cdrs", {"cdr.id": sid, "role": "received"}),
            f"our CDR at the {v.version} eMSP",
        )
        cdr = cdr_doc["cdr"]
        tariff = simple_tariff(f"VT-{tag}", country_code=CC, party_id=PID)
        want = expected_total(tariff, Decimal("8.25"), Decimal("0.5"))
        assert want["excl_vat"] == Decimal("3.575")  # 0.50 + 8.25 x 0.30 + 0.5 x 1.20
        total = dict(cdr["total_cost"])
        taxes = total.pop("taxes", None)
        got = {k: exact(val) for k, val in total.items()}
        if v.version == "2.1.1":
            # A 2.1.1 CDR's total_cost is one number, excluding VAT.
            assert got == {"excl_vat": want["excl_vat"]} and taxes is None
        else:
            assert got == want
            # 2.3.0's tax lines of our pricing, kept by the eMSP.
            assert [{**t, "amount": exact(t["amount"])} for t in taxes] == [
                {"name": "VAT", "amount": Decimal("0.715"), "percentage": 20}
            ]
        assert exact(cdr["total_energy"]) == Decimal("8.25")
        assert cdr["cdr_token"]["contract_id"] == issued["contract_id"]
        assert cdr["cdr_location"]["id"] == loc
        assert [t["id"] for t in cdr["tariffs"]] == [f"VT-{tag}"]
    finally:
        await plugged.close()

    # It pulls every module we are the Sender of, from our Sender in its
    # version: every object read, none skipped. Sessions and CDRs it holds
    # as sent are unchanged; a location or tariff is recorded again (a pull
    # records what it reads, ADR 0042), and the copy it serves is the same.
    held = await asyncio.to_thread(_its_copy, v, loc)
    for module in ("locations", "tariffs", "sessions", "cdrs"):
        report = await asyncio.to_thread(_sync, v, module)
        assert report["skipped"] == 0, (module, report)
        if module in ("sessions", "cdrs"):
            assert report["recorded"] == 0 and report["unchanged"] >= 1, (module, report)
        else:
            assert report["recorded"] >= 1, (module, report)
    # Read once its view holds the pulled copy (its receiver's GET waits).
    assert await asyncio.to_thread(_its_copy, v, loc) == held


def _its_copy(v: Versioned, loc: str) -> dict[str, Any]:
    """Our location as the eMSP's Receiver serves it back to us, in its version."""
    token = sealed_token(v.cpo, EMSP_ID)
    header = f"Token {token}" if v.version == "2.1.1" else auth(token)["Authorization"]
    url = f"{v.emsp.base_url}/ocpi/emsp/{v.version}/locations/{CC}/{PID}/{loc}"
    resp = httpx.get(url, headers={"Authorization": header}, timeout=20)
    assert resp.status_code == 200 and resp.json()["status_code"] == 1000, resp.text
    data: dict[str, Any] = resp.json()["data"]
    return data


def _sync(v: Versioned, module: str) -> dict[str, Any]:
    ran = v.emsp.run("partners", f"sync-{module}", CPO_ID)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    report: dict[str, Any] = json.loads(ran.stdout.strip().splitlines()[-1])
    assert (report["partner_id"], report["module"]) == (CPO_ID, module), report
    return report


async def _plug_retrying(platform: Platform, cp_id: str) -> Any:
    """The charger connects once the gateway knows its registration."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        try:
            return await _plug(platform, cp_id)
        except Exception:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)
