"""The one HTTP-status rule for OCPI errors (docs/adr/0039 §2), walked over
every ``/ocpi`` route on the real services: each module's error cases, both
roles, with the HTTP status, the OCPI status code and the envelope's shape
(no framework body ever). The walk must reach every ``/ocpi`` route and
method the app declares, so a new route without its cases fails here before
it can drift from the rule.

The rule: 400 only for a body that is not JSON; 401 for the token; 405 for
credentials in the wrong state (and a method a module lacks); 404 for a GET
of one object that does not exist (ids that cannot exist included) and the
two 404s a module names (authorize of an unknown Token, charging
preferences); everything else that reached the OCPI layer is HTTP 200 with
its OCPI code.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from api.app import create_app
from ocpi_hub.bootstrap import mysql_engine
from ocpi_hub.secrets import hash_token
from ocpi_hub.settings import Settings
from producers.partners import PartnerState
from projections.mysql.migrate import migrate
from schemas.ocpi.credentials import BusinessDetails, CredentialsRole, Role
from tests.conftest import fresh_namespace
from tests.integration.test_push import VAULT
from tests.integration.test_sent_commands import register_partner
from tests.ops_admin import as_admin
from tests.token_objects import token

# The caller of a case: a partner with a CPO (NL/ABC) and an eMSP (NL/ABD)
# role, a partner that is only a CPO (DE/CPO), an invited partner's
# TOKEN_A, or nobody.
BOTH, CPO_ONLY, TOKEN_A, NOBODY = "both", "cpo-only", "token-a", "nobody"
HUB = "hub"  # a partner registered as HUB (NL/HBX)
PTP = "ptp"  # a partner registered for OCPI 2.3.0 (DE/PTP): Payments is 2.3.0's

AT = "2026-06-01T10:00:00Z"
NOT_JSON = b"{not json"
LONG = "X" * 37  # beyond CiString(36): no such object can exist
RESPONSE_URL = "http://127.0.0.1:9/ocpi/emsp/2.2.1/commands/START_SESSION/1"
# OCPI DateTime as we write it (schemas.ocpi.common.format_ocpi_datetime).
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@dataclass(frozen=True)
class Case:
    caller: str
    method: str
    path: str
    http: int
    ocpi: int
    body: Any = None  # JSON, or bytes sent as they are
    headers: tuple[tuple[str, str], ...] = ()


LOC_R = "/ocpi/emsp/2.2.1/locations"
LOC_S = "/ocpi/cpo/2.2.1/locations"
TAR_R = "/ocpi/emsp/2.2.1/tariffs"
TAR_S = "/ocpi/cpo/2.2.1/tariffs"
TOK_R = "/ocpi/cpo/2.2.1/tokens"
TOK_S = "/ocpi/emsp/2.2.1/tokens"
SES_R = "/ocpi/emsp/2.2.1/sessions"
SES_S = "/ocpi/cpo/2.2.1/sessions"
CDR_R = "/ocpi/emsp/2.2.1/cdrs"
CDR_S = "/ocpi/cpo/2.2.1/cdrs"
CMD_R = "/ocpi/cpo/2.2.1/commands"
CMD_S = "/ocpi/emsp/2.2.1/commands"
CP_R = "/ocpi/cpo/2.2.1/chargingprofiles"
CP_S = "/ocpi/emsp/2.2.1/chargingprofiles"
CREDENTIALS = "/ocpi/2.2.1/credentials"
HCI = "/ocpi/2.2.1/hubclientinfo"
PAY = "/ocpi/cpo/2.3.0/payments"

PATCH_BODY = {"last_updated": AT}
START = {
    "response_url": RESPONSE_URL,
    "token": token(country_code="NL", party_id="ABD"),
    "location_id": "NOPE",
}
PREFERENCES = {"profile_type": "CHEAP"}
CP_URL = "http://127.0.0.1:9/ocpi/emsp/2.2.1/chargingprofiles/SET/1"
CLIENT_INFO = {
    "country_code": "DE",
    "party_id": "EMA",
    "role": "EMSP",
    "status": "CONNECTED",
    "last_updated": AT,
}
# The partner speaks as its eMSP party (without the headers its first role,
# the CPO, would).
TO_ANOTHER = (("OCPI-to-country-code", "DE"), ("OCPI-to-party-id", "XYZ"))
AS_EMSP = (("OCPI-from-country-code", "NL"), ("OCPI-from-party-id", "ABD"))

CASES = [
    # --- versions and credentials (TOKEN_A allowed) -----------------------------------
    Case(NOBODY, "GET", "/ocpi/versions", 401, 2000),
    Case(BOTH, "GET", "/ocpi/2.0", 404, 3002),
    Case(NOBODY, "GET", "/ocpi/2.2.1", 401, 2000),
    Case(NOBODY, "GET", CREDENTIALS, 401, 2000),
    Case(BOTH, "POST", CREDENTIALS, 405, 2000, body={}),
    Case(TOKEN_A, "POST", CREDENTIALS, 200, 2001, body={"token": "x"}),
    Case(TOKEN_A, "POST", CREDENTIALS, 400, 2000, body=NOT_JSON),
    Case(TOKEN_A, "PUT", CREDENTIALS, 405, 2000, body={}),
    Case(BOTH, "PUT", CREDENTIALS, 200, 2001, body={}),
    Case(TOKEN_A, "DELETE", CREDENTIALS, 405, 2000),
    Case(NOBODY, "DELETE", CREDENTIALS, 401, 2000),
    # --- locations, receiver (we as eMSP; the partner's CPO NL/ABC) ---------------------
    Case(NOBODY, "GET", f"{LOC_R}/NL/ABC/L1", 401, 2000),
    Case(TOKEN_A, "GET", f"{LOC_R}/NL/ABC/L1", 401, 2000),
    Case(BOTH, "GET", f"{LOC_R}/NL/ABC/NOPE", 404, 2003),
    Case(BOTH, "GET", f"{LOC_R}/NL/ABC/NOPE/E1", 404, 2003),
    Case(BOTH, "GET", f"{LOC_R}/NL/ABC/NOPE/E1/1", 404, 2003),
    Case(BOTH, "GET", f"{LOC_R}/NL/ABC/{LONG}", 404, 2001),
    Case(BOTH, "GET", f"{LOC_R}/DE/XYZ/L1", 200, 2001),  # not the caller's party
    Case(BOTH, "PUT", f"{LOC_R}/NL/ABC/L1", 200, 2001, body={}),
    Case(BOTH, "PUT", f"{LOC_R}/NL/ABC/L1", 400, 2000, body=NOT_JSON),
    Case(BOTH, "PUT", f"{LOC_R}/NL/ABC/{LONG}", 200, 2001, body={}),
    Case(BOTH, "PUT", f"{LOC_R}/NL/ABC/NOPE/E1", 200, 2001, body={}),
    Case(BOTH, "PUT", f"{LOC_R}/NL/ABC/NOPE/E1/1", 200, 2001, body={}),
    Case(BOTH, "PATCH", f"{LOC_R}/NL/ABC/NOPE", 200, 2003, body=PATCH_BODY),
    Case(BOTH, "PATCH", f"{LOC_R}/NL/ABC/NOPE/E1", 200, 2003, body=PATCH_BODY),
    Case(BOTH, "PATCH", f"{LOC_R}/NL/ABC/NOPE/E1/1", 200, 2003, body=PATCH_BODY),
    Case(BOTH, "PATCH", f"{LOC_R}/DE/XYZ/L1", 200, 2001, body=PATCH_BODY),
    # --- locations, sender (we as CPO) ---------------------------------------------------
    Case(NOBODY, "GET", LOC_S, 401, 2000),
    Case(BOTH, "GET", f"{LOC_S}?offset=-1", 200, 2001),
    Case(BOTH, "GET", f"{LOC_S}?cursor=not-ours", 200, 2001),
    Case(BOTH, "GET", f"{LOC_S}?date_from=yesterday", 200, 2001),
    Case(BOTH, "GET", LOC_S, 200, 2001, headers=TO_ANOTHER),  # we do not forward
    Case(BOTH, "GET", f"{LOC_S}/NOPE", 404, 2003),
    Case(BOTH, "GET", f"{LOC_S}/{LONG}", 404, 2001),
    Case(BOTH, "GET", f"{LOC_S}/NOPE/E1", 404, 2003),
    Case(BOTH, "GET", f"{LOC_S}/NOPE/E1/1", 404, 2003),
    # --- tariffs --------------------------------------------------------------------------
    Case(BOTH, "GET", f"{TAR_R}/NL/ABC/NOPE", 404, 2000),
    Case(BOTH, "GET", f"{TAR_R}/NL/ABC/{LONG}", 404, 2001),
    Case(BOTH, "GET", f"{TAR_R}/DE/XYZ/T1", 200, 2001),
    Case(BOTH, "PUT", f"{TAR_R}/NL/ABC/T1", 200, 2001, body={}),
    Case(BOTH, "PUT", f"{TAR_R}/NL/ABC/T1", 400, 2000, body=NOT_JSON),
    Case(BOTH, "DELETE", f"{TAR_R}/NL/ABC/NOPE", 200, 2000),
    Case(BOTH, "DELETE", f"{TAR_R}/NL/ABC/{LONG}", 200, 2001),
    Case(BOTH, "PATCH", f"{TAR_R}/NL/ABC/T1", 405, 2000, body=PATCH_BODY),  # no PATCH
    Case(NOBODY, "GET", TAR_S, 401, 2000),
    Case(BOTH, "GET", f"{TAR_S}?limit=0", 200, 2001),
    # --- tokens, receiver (we as CPO; the partner's eMSP NL/ABD) -----------------------
    Case(BOTH, "GET", f"{TOK_R}/NL/ABD/NOPE", 404, 2004),
    Case(BOTH, "GET", f"{TOK_R}/NL/ABD/NOPE?type=NFC", 404, 2001),
    Case(BOTH, "GET", f"{TOK_R}/DE/XYZ/U1", 200, 2001),
    Case(BOTH, "PUT", f"{TOK_R}/NL/ABD/U1", 200, 2001, body={}),
    Case(BOTH, "PUT", f"{TOK_R}/NL/ABD/U1", 400, 2000, body=NOT_JSON),
    Case(BOTH, "PUT", f"{TOK_R}/NL/ABD/U1?type=NFC", 200, 2001, body={}),
    Case(BOTH, "PATCH", f"{TOK_R}/NL/ABD/NOPE", 200, 2004, body=PATCH_BODY),
    # --- tokens, sender (we as eMSP) -------------------------------------------------------
    Case(BOTH, "GET", f"{TOK_S}?offset=x", 200, 2001),
    Case(BOTH, "POST", f"{TOK_S}/NOPE/authorize", 404, 2004),
    Case(BOTH, "POST", f"{TOK_S}/NOPE/authorize", 200, 2001, body={"location_id": LONG * 2}),
    Case(BOTH, "POST", f"{TOK_S}/NOPE/authorize?type=NFC", 200, 2001),
    Case(NOBODY, "POST", f"{TOK_S}/NOPE/authorize", 401, 2000),
    # --- sessions, receiver (we as eMSP; the partner's CPO NL/ABC) ----------------------
    Case(BOTH, "GET", f"{SES_R}/NL/ABC/NOPE", 404, 2001),
    Case(BOTH, "GET", f"{SES_R}/NL/ABC/{LONG}", 404, 2001),
    Case(BOTH, "GET", f"{SES_R}/DE/XYZ/S1", 200, 2001),
    Case(BOTH, "PUT", f"{SES_R}/NL/ABC/S1", 200, 2001, body={}),
    Case(BOTH, "PUT", f"{SES_R}/NL/ABC/S1", 400, 2000, body=NOT_JSON),
    Case(BOTH, "PATCH", f"{SES_R}/NL/ABC/NOPE", 200, 2001, body=PATCH_BODY),
    # --- sessions, sender (we as CPO) -------------------------------------------------------
    Case(BOTH, "GET", SES_S, 200, 2001),  # date_from is required
    Case(BOTH, "GET", f"{SES_S}?date_from={AT}&cursor=not-ours", 200, 2001),
    Case(BOTH, "PUT", f"{SES_S}/NOPE/charging_preferences", 404, 2001, body=PREFERENCES),
    Case(BOTH, "PUT", f"{SES_S}/NOPE/charging_preferences", 200, 2001, body={}),
    Case(NOBODY, "PUT", f"{SES_S}/NOPE/charging_preferences", 401, 2000, body=PREFERENCES),
    # --- CDRs ------------------------------------------------------------------------------
    Case(BOTH, "POST", CDR_R, 200, 2001, body={}),
    Case(BOTH, "POST", CDR_R, 400, 2000, body=NOT_JSON),
    Case(BOTH, "GET", f"{CDR_R}/NOPE", 404, 2001),
    Case(BOTH, "GET", f"{CDR_R}/{'C' * 40}", 404, 2001),
    Case(NOBODY, "GET", CDR_S, 401, 2000),
    Case(BOTH, "GET", f"{CDR_S}?date_to=later", 200, 2001),
    # --- commands, receiver (we as CPO; only an eMSP sends them) -----------------------
    Case(BOTH, "POST", f"{CMD_R}/START_SESSION", 200, 2003, body=START, headers=AS_EMSP),
    Case(BOTH, "POST", f"{CMD_R}/SELF_DESTRUCT", 200, 2001, body=START, headers=AS_EMSP),
    Case(BOTH, "POST", f"{CMD_R}/START_SESSION", 200, 2001, headers=AS_EMSP),  # no body
    Case(BOTH, "POST", f"{CMD_R}/START_SESSION", 400, 2000, body=NOT_JSON, headers=AS_EMSP),
    Case(BOTH, "POST", f"{CMD_R}/START_SESSION", 200, 2000, body=START),  # as its CPO
    Case(CPO_ONLY, "POST", f"{CMD_R}/START_SESSION", 200, 2000, body=START),
    # --- commands, sender (we as eMSP: the CPO posts a result) ------------------------
    Case(BOTH, "POST", f"{CMD_S}/START_SESSION/never-sent", 200, 2003, body={"result": "ACCEPTED"}),
    Case(BOTH, "POST", f"{CMD_S}/FLY_AWAY/never-sent", 200, 2001, body={"result": "ACCEPTED"}),
    Case(BOTH, "POST", f"{CMD_S}/START_SESSION/x", 400, 2000, body=NOT_JSON),
    # --- charging profiles, receiver (we as CPO; only an eMSP sends them) -------------
    Case(BOTH, "PUT", f"{CP_R}/NOPE", 200, 2001, body={}, headers=AS_EMSP),
    Case(BOTH, "PUT", f"{CP_R}/NOPE", 400, 2000, body=NOT_JSON, headers=AS_EMSP),
    # An unknown session is a normal answer (1000, UNKNOWN_SESSION), not an error.
    Case(BOTH, "GET", f"{CP_R}/NOPE?response_url={CP_URL}", 404, 2001, headers=AS_EMSP),
    Case(BOTH, "DELETE", f"{CP_R}/NOPE", 200, 2001, headers=AS_EMSP),
    Case(NOBODY, "DELETE", f"{CP_R}/NOPE?response_url={CP_URL}", 401, 2000),
    # --- charging profiles, sender (we as eMSP: the CPO posts results and updates) ----
    Case(BOTH, "POST", f"{CP_S}/SET/never-sent", 200, 2003, body={"result": "ACCEPTED"}),
    Case(BOTH, "POST", f"{CP_S}/SET/x", 400, 2000, body=NOT_JSON),
    Case(BOTH, "PUT", f"{CP_S}/S1", 200, 2001, body={}),
    Case(BOTH, "PUT", f"{CP_S}/S1", 400, 2000, body=NOT_JSON),
    # --- hub client info (only a hub sends it; no routing headers) ---------------------
    Case(NOBODY, "GET", HCI, 401, 2000),
    Case(BOTH, "GET", f"{HCI}?limit=0", 200, 2001),
    Case(BOTH, "PUT", f"{HCI}/DE/EMA", 200, 2000, body=CLIENT_INFO),  # not a hub
    Case(BOTH, "GET", f"{HCI}/DE/EMA", 200, 2000),
    Case(HUB, "PUT", f"{HCI}/DE/XYZ", 200, 2001, body=CLIENT_INFO),  # another party's
    Case(HUB, "PUT", f"{HCI}/DE/EMA", 200, 2001, body={}),
    Case(HUB, "PUT", f"{HCI}/DE/EMA", 400, 2000, body=NOT_JSON),
    Case(HUB, "PUT", f"{HCI}/DE/LONGER", 200, 2001, body=CLIENT_INFO),
    Case(HUB, "GET", f"{HCI}/DE/NOP", 404, 2000),
    Case(HUB, "GET", f"{HCI}/DE/LONGER", 404, 2001),
    # --- payments, receiver (2.3.0, we as CPO; a partner registered for 2.3.0) ------
    Case(NOBODY, "GET", f"{PAY}/terminals/T1", 401, 2000),
    Case(TOKEN_A, "GET", f"{PAY}/terminals/T1", 401, 2000),
    # A partner registered for 2.2.1 uses 2.2.1's endpoints: no Payments.
    Case(BOTH, "GET", f"{PAY}/terminals/T1", 200, 2000),
    Case(BOTH, "POST", f"{PAY}/terminals", 200, 2000, body={"terminal_id": "T1"}),
    Case(PTP, "GET", f"{PAY}/terminals/NOPE", 404, 2000),
    Case(PTP, "GET", f"{PAY}/terminals/{LONG}", 404, 2001),
    Case(NOBODY, "POST", f"{PAY}/terminals", 401, 2000, body={"terminal_id": "T1"}),
    Case(PTP, "POST", f"{PAY}/terminals", 200, 2001, body={}),
    Case(PTP, "POST", f"{PAY}/terminals", 200, 2001, body={"terminal_id": LONG}),
    Case(PTP, "POST", f"{PAY}/terminals", 200, 2001, body={"terminal_id": "T1", "city": 5}),
    Case(PTP, "POST", f"{PAY}/terminals", 400, 2000, body=NOT_JSON),
    Case(NOBODY, "GET", f"{PAY}/financial-advice-confirmations/F1", 401, 2000),
    Case(PTP, "GET", f"{PAY}/financial-advice-confirmations/NOPE", 404, 2000),
    Case(PTP, "GET", f"{PAY}/financial-advice-confirmations/{LONG}", 404, 2001),
    Case(PTP, "POST", f"{PAY}/financial-advice-confirmations", 200, 2001, body={}),
    Case(PTP, "POST", f"{PAY}/financial-advice-confirmations", 200, 2001, body={"id": "F1"}),
    Case(PTP, "POST", f"{PAY}/financial-advice-confirmations", 400, 2000, body=NOT_JSON),
    # --- what no route declares: the router's answer, as an envelope ------------------------
    Case(BOTH, "GET", "/ocpi/emsp/2.2.1/nothing-here", 404, 2000),
    Case(BOTH, "DELETE", LOC_S, 405, 2000),
]


def _auth(token_: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(token_.encode()).decode()}


def _partner(
    partner_id: str, token_: str, *roles: tuple[Role, str, str], version: str | None = None
) -> PartnerState:
    return PartnerState(
        partner_id=partner_id,
        status="registered",
        version=version,
        roles=tuple(
            CredentialsRole(
                role=role,
                business_details=BusinessDetails(name=partner_id),
                country_code=cc,
                party_id=pid,
            )
            for role, cc, pid in roles
        ),
        their_token_hash=hash_token(token_),
        our_token_encrypted=VAULT.encrypt(f"ours-{token_}"),
    )


class RouteRecorder:
    """The app, noting which declared route each request reached (the
    router puts it in the request's scope)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.reached: set[tuple[str, str]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        route = scope.get("route")
        if scope["type"] == "http" and route is not None:
            self.reached.add((scope["method"], str(route.path)))


@dataclass
class Walk:
    api: TestClient
    app: RouteRecorder
    tokens: dict[str, dict[str, str]]

    def send(self, case: Case) -> Any:
        headers = {**self.tokens[case.caller], **dict(case.headers)}
        if isinstance(case.body, bytes):
            headers["Content-Type"] = "application/json"
            return self.api.request(case.method, case.path, content=case.body, headers=headers)
        if case.body is None:
            return self.api.request(case.method, case.path, headers=headers)
        return self.api.request(case.method, case.path, json=case.body, headers=headers)


@pytest.fixture(scope="module")
def walk(services: Settings) -> Iterator[Walk]:
    with fresh_namespace(services) as ns:
        s = ns.settings.model_copy(update={"party_country_code": "ZZ", "party_id": "HUB"})
        engine = mysql_engine(s)
        migrate(engine)
        engine.dispose()
        both, cpo_only = f"both-{uuid.uuid4().hex}", f"cpo-{uuid.uuid4().hex}"
        register_partner(
            s, _partner("both", both, (Role.CPO, "NL", "ABC"), (Role.EMSP, "NL", "ABD"))
        )
        register_partner(s, _partner("cpo-only", cpo_only, (Role.CPO, "DE", "CPO")))
        hub = f"hub-{uuid.uuid4().hex}"
        register_partner(s, _partner("hub", hub, (Role.HUB, "NL", "HBX")))
        ptp = f"ptp-{uuid.uuid4().hex}"
        register_partner(s, _partner("ptp", ptp, (Role.OTHER, "DE", "PTP"), version="2.3.0"))
        app = RouteRecorder(as_admin(create_app(s)))
        with TestClient(app) as api:
            invited = api.post(
                "/ops/partners", json={"country_code": "FR", "party_id": "INV", "role": "CPO"}
            )
            assert invited.status_code == 200, invited.text
            tokens = {
                BOTH: _auth(both),
                CPO_ONLY: _auth(cpo_only),
                HUB: _auth(hub),
                PTP: _auth(ptp),
                TOKEN_A: _auth(invited.json()["data"]["token_a"]),
                NOBODY: {},
            }
            yield Walk(api, app, tokens)


def _ocpi_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every method and path template the app declares under /ocpi (its
    OpenAPI lists them all)."""
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/ocpi")
        for method in operations
    }


def _deviation(case: Case, resp: Any) -> str | None:
    """What is wrong with the answer to ``case``, if anything."""
    where = f"{case.caller} {case.method} {case.path} -> {resp.status_code}: {resp.text[:200]}"
    if not resp.headers.get("content-type", "").startswith("application/json"):
        return f"not JSON: {where}"
    body = resp.json()
    # An OCPI envelope and nothing else: no framework "detail", no data on
    # an error (transport_and_format, Response format).
    if not isinstance(body, dict) or set(body) != {"status_code", "status_message", "timestamp"}:
        return f"not an error envelope: {where}"
    if (resp.status_code, body["status_code"]) != (case.http, case.ocpi):
        return f"expected HTTP {case.http} + {case.ocpi}: {where}"
    if not isinstance(body["status_message"], str) or not body["status_message"]:
        return f"no status_message: {where}"
    if not isinstance(body["timestamp"], str) or not TIMESTAMP.match(body["timestamp"]):
        return f"not an OCPI timestamp: {where}"
    return None


def test_every_ocpi_error_case_follows_the_one_rule(walk: Walk) -> None:
    walk.app.reached.clear()
    deviations = [d for case in CASES if (d := _deviation(case, walk.send(case))) is not None]
    assert not deviations, "\n".join(deviations)
    # A route without error cases here could drift from the rule unseen.
    declared = _ocpi_routes(walk.app.app)
    assert len(declared) > 30, declared  # the app's routes were found at all
    missing = declared - walk.app.reached
    assert not missing, f"routes without error cases in the walk: {sorted(missing)}"
