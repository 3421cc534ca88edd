"""The README's quick start: `make up` leaves a working platform behind,
and its first API key opens /ops.

This drives the platform that `make up` started (not the isolated one of the
other e2e tests), on its configured API port, as an operator and a partner
would: invite a partner with the CLI, let it register (a stub OCPI party in
this process), then let it push a location and an EVSE status. The partner's
party is reserved (country code ZZ is user-assigned in ISO 3166 and never a
real country) and fresh on every run.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import uuid
from datetime import UTC, datetime

import httpx

from ocpi_hub.settings import Settings
from tests.e2e.conftest import OCPI_HUB, ROOT
from tests.e2e.test_walking_skeleton import wait_for
from tests.ocpi_objects import evse, location
from tests.peer_stub import peer_stub
from tests.services import env_of


def test_the_platform_make_up_started_serves_the_whole_flow(services: Settings) -> None:
    base = f"http://127.0.0.1:{services.api_port}"
    with httpx.Client(base_url=base, timeout=10) as client:
        try:
            ready = client.get("/readyz")
        except httpx.ConnectError as exc:
            raise AssertionError(f"no API at {base}: run `make up` first") from exc
        assert ready.status_code == 200, ready.text
        unauthenticated = client.get("/ocpi/versions")  # OCPI needs a partner's token
        assert unauthenticated.status_code == 401
        assert unauthenticated.json()["status_code"] == 2000

        # The README's first key (ADR 0031): /ops answers only with it, and
        # not after it was revoked.
        env = {**os.environ, **env_of(services)}
        created = subprocess.run(
            [OCPI_HUB, "api-keys", "create", "--name", "quickstart", "--role", "viewer"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        key = json.loads(created.stdout.strip().splitlines()[-1])
        bearer = {"Authorization": f"Bearer {key['key']}"}
        assert client.get("/ops/sites").status_code == 401
        assert client.get("/ops/sites", headers=bearer).status_code == 200
        revoked = subprocess.run(
            [OCPI_HUB, "api-keys", "revoke", key["key_id"]],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert revoked.returncode == 0, revoked.stderr
        assert client.get("/ops/sites", headers=bearer).status_code == 401

        party = "Q" + secrets.token_hex(1).upper()  # a fresh party per run
        invited = subprocess.run(
            [OCPI_HUB, "partners", "invite", "--country-code", "ZZ", "--party-id", party,
             "--role", "CPO", "--partner-id", f"quickstart-{party}-{uuid.uuid4().hex[:6]}"],
            env={**os.environ, **env_of(services)}, cwd=ROOT, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert invited.returncode == 0, invited.stderr
        invite = json.loads(invited.stdout.strip().splitlines()[-1])
        with peer_stub("ZZ", party) as stub:
            token_c = stub.register_with(invite["versions_url"], invite["token_a"])
        auth = {"Authorization": "Token " + base64.b64encode(token_c.encode()).decode()}

        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        url = f"/ocpi/emsp/2.2.1/locations/ZZ/{party}/QUICKSTART"
        body = location(
            "QUICKSTART", country_code="ZZ", party_id=party, at=now, evses=[evse("PROBE-1", at=now)]
        )
        put = client.put(url, json=body, headers=auth)
        assert put.status_code in (200, 201), put.text
        assert put.json()["status_code"] == 1000
        later = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        status = {"status": "CHARGING", "last_updated": later}
        resp = client.patch(f"{url}/PROBE-1", json=status, headers=auth)
        assert resp.json()["status_code"] == 1000, resp.text

        def shown() -> object:
            r = client.get(f"{url}/PROBE-1", headers=auth)
            return r.status_code == 200 and r.json()["data"]["status"] == "CHARGING"

        try:
            wait_for(shown, "the probe EVSE in the location view of the `make up` platform")
        finally:
            # The stub is gone after this test: unregister it (credentials
            # DELETE with its own token), so the platform does not keep a
            # partner nobody answers for.
            gone = client.delete(
                invite["versions_url"].replace("versions", "2.2.1/credentials"), headers=auth
            )
            assert gone.status_code == 200, gone.text
        assert client.get(f"{url}/PROBE-1", headers=auth).status_code == 401
