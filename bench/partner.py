"""A registered partner for the benchmarks: the OCPI routes need one's token.

``bench_partner`` does what an operator and a partner do (the README's quick
start, tests/e2e/test_quickstart.py): ``ocpi-hub partners invite`` issues a
TOKEN_A, a stub OCPI party (tests/peer_stub.py) registers with it and gets
its TOKEN_C. On the way out the partner unregisters (credentials DELETE), so
runs do not pile up registered partners whose stub is gone.

The stub does not publish a Locations RECEIVER endpoint: the platform's
pusher (processors/push.py) then never targets the bench partner, so no push
of the platform's own locations (the pull benchmark seeds thousands) runs
during a measurement.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.peer_stub import peer_stub

REPO = Path(__file__).resolve().parent.parent
COUNTRY_CODE = "ZZ"  # user-assigned in ISO 3166: never a real country
INVITE_TIMEOUT_S = 120.0


class PartnerSetupError(Exception):
    """The bench partner could not be invited or registered."""


@dataclass(frozen=True)
class BenchPartner:
    partner_id: str
    country_code: str
    party_id: str
    token_c: str
    versions_url: str
    # The stub OCPI party that registered (serving until the block ends): a
    # benchmark may watch what the platform sends it, e.g. CommandResults.
    stub: Any = field(default=None, compare=False, repr=False)

    @property
    def authorization(self) -> str:
        """The Authorization header value (OCPI 2.2.1: the token, base64)."""
        return "Token " + base64.b64encode(self.token_c.encode()).decode()


def fresh_party_id(prefix: str = "B") -> str:
    """A fresh 3-character party id: the prefix and 2 hex digits."""
    return prefix + secrets.token_hex(1).upper()


def _ocpi_hub() -> str:
    exe = Path(sys.executable).with_name("ocpi-hub")
    return str(exe) if exe.exists() else "ocpi-hub"


def invite(
    country_code: str,
    party_id: str,
    partner_id: str,
    role: str = "CPO",
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``ocpi-hub partners invite``; returns {partner_id, token_a, versions_url}.
    The CLI reads data/run/services.env like the running platform; ``env``
    (default: ours) names another platform, e.g. one in a namespace of its own."""
    done = subprocess.run(
        [_ocpi_hub(), "partners", "invite", "--country-code", country_code,
         "--party-id", party_id, "--role", role, "--partner-id", partner_id],
        cwd=REPO, env=dict(env or os.environ), capture_output=True, text=True,
        timeout=INVITE_TIMEOUT_S, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise PartnerSetupError(f"`ocpi-hub partners invite` failed: {done.stderr.strip()[-500:]}")
    try:
        answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise PartnerSetupError(f"unexpected invite output: {done.stdout[-300:]!r}") from exc
    return answer


def ops_key(run_id: str, stack: contextlib.ExitStack | None = None) -> dict[str, str]:
    """An operator API key for the bench's /ops setup calls (``ocpi-hub
    api-keys create``), as the Authorization header; revoked when ``stack``
    closes."""
    done = subprocess.run(
        [_ocpi_hub(), "api-keys", "create", "--name", f"bench {run_id}", "--role", "operator"],
        cwd=REPO, env=os.environ.copy(), capture_output=True, text=True,
        timeout=INVITE_TIMEOUT_S, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise PartnerSetupError(f"`ocpi-hub api-keys create` failed: {done.stderr.strip()[-500:]}")
    made: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if stack is not None:
        stack.callback(
            subprocess.run,
            [_ocpi_hub(), "api-keys", "revoke", made["key_id"]],
            cwd=REPO, env=os.environ.copy(), capture_output=True,
            timeout=INVITE_TIMEOUT_S, check=False,
        )  # fmt: skip
    return {"Authorization": f"Bearer {made['key']}"}


def _without_locations_receiver(answer: Any) -> Any:
    def filtered(method: str, path: str, auth: str | None, body: Any) -> tuple[int, Any]:
        status, data = answer(method, path, auth, body)
        if method == "GET" and path == "/2.2.1" and status == 200:
            details = data["data"]
            endpoints = [e for e in details["endpoints"] if e["identifier"] != "locations"]
            data = {**data, "data": {**details, "endpoints": endpoints}}
        return status, data

    return filtered


def _credentials_url(client: httpx.Client, versions_url: str, auth: dict[str, str]) -> str:
    [version] = [
        v for v in client.get(versions_url, headers=auth).json()["data"] if v["version"] == "2.2.1"
    ]
    details = client.get(version["url"], headers=auth).json()["data"]
    [url] = [e["url"] for e in details["endpoints"] if e["identifier"] == "credentials"]
    return str(url)


def unregister(partner: BenchPartner) -> None:
    auth = {"Authorization": partner.authorization}
    with httpx.Client(timeout=30, trust_env=False) as client:
        client.delete(_credentials_url(client, partner.versions_url, auth), headers=auth)


@contextmanager
def bench_partner(
    run_id: str,
    party_prefix: str = "B",
    role: str = "CPO",
    env: Mapping[str, str] | None = None,
) -> Iterator[BenchPartner]:
    """Invite and register a fresh partner ZZ/<prefix><2 hex> in ``role``
    (EMSP to send the platform commands) with the platform ``env`` names
    (``invite``); unregister it (best effort) when the block ends. The stub
    serves until then."""
    party_id = fresh_party_id(party_prefix)
    partner_id = f"bench-{COUNTRY_CODE}-{party_id}-{run_id}"
    invited = invite(COUNTRY_CODE, party_id, partner_id, role, env)
    with peer_stub(COUNTRY_CODE, party_id, role=role) as stub:
        stub.answer = _without_locations_receiver(stub.answer)  # type: ignore[method-assign]
        try:
            token_c = stub.register_with(invited["versions_url"], invited["token_a"])
        except (AssertionError, httpx.HTTPError, KeyError, ValueError) as exc:
            raise PartnerSetupError(f"registration failed: {type(exc).__name__}: {exc}") from exc
        partner = BenchPartner(
            partner_id=partner_id,
            country_code=COUNTRY_CODE,
            party_id=party_id,
            token_c=token_c,
            versions_url=invited["versions_url"],
            stub=stub,
        )
        try:
            yield partner
        finally:
            with suppress(Exception):
                unregister(partner)
