"""The README's quick start: `make up` leaves a working platform behind.

This drives the platform that `make up` started (not the isolated one of the
other e2e tests), on its configured API port, under a reserved party
(country code ZZ is user-assigned in ISO 3166 and never a real country).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx

from ocpi_hub.settings import Settings
from tests.e2e.test_walking_skeleton import wait_for


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

        evse = f"PROBE-{uuid.uuid4().hex[:8]}"
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        url = f"/ocpi/emsp/2.2.1/locations/ZZ/QST/QUICKSTART/{evse}"
        resp = client.patch(url, json={"status": "AVAILABLE", "last_updated": now})
        assert resp.status_code == 200, resp.text

        def shown() -> object:
            r = client.get(url)
            return r.status_code == 200 and r.json()["data"]["status"] == "AVAILABLE"

        wait_for(shown, "the probe EVSE in the location view of the `make up` platform")
