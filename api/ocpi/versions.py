"""Versions module (version_information_endpoint.asciidoc): the versions we
speak and, per version, the endpoints we offer. TOKEN_A is accepted here.

Every version is served by the same handlers, converted at the edge
(docs/adr/0045): the list is the versions the settings offer
(``OCPI_HUB_OCPI_VERSIONS``), each version's details the endpoints its
adapter serves, in its shape (2.1.1: no roles; to a 2.1.1 partner, the
interfaces of the role we play towards it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth import CallerDep
from api.deps import ContainerDep
from api.errors import envelope
from api.ocpi.paths import VersionPath
from api.ocpi.payments import payments_endpoint
from schemas.ocpi.adapters import wire
from schemas.ocpi.versions import Endpoint, InterfaceRole
from schemas.ocpi.wire import version_key

router = APIRouter(prefix="/ocpi", tags=["ocpi: versions"])


def endpoints(base: str, version: str) -> list[Endpoint]:
    """Every endpoint we serve, in our model (with roles), for ``version``."""
    listed = [
        # The credentials module's role is not relevant; SENDER is advised.
        ("credentials", "SENDER", f"{base}/ocpi/{version}/credentials"),
        ("locations", "SENDER", f"{base}/ocpi/cpo/{version}/locations"),
        ("locations", "RECEIVER", f"{base}/ocpi/emsp/{version}/locations"),
        ("tariffs", "SENDER", f"{base}/ocpi/cpo/{version}/tariffs"),
        ("tariffs", "RECEIVER", f"{base}/ocpi/emsp/{version}/tariffs"),
        ("tokens", "SENDER", f"{base}/ocpi/emsp/{version}/tokens"),
        ("tokens", "RECEIVER", f"{base}/ocpi/cpo/{version}/tokens"),
        ("sessions", "SENDER", f"{base}/ocpi/cpo/{version}/sessions"),
        ("sessions", "RECEIVER", f"{base}/ocpi/emsp/{version}/sessions"),
        ("cdrs", "SENDER", f"{base}/ocpi/cpo/{version}/cdrs"),
        ("cdrs", "RECEIVER", f"{base}/ocpi/emsp/{version}/cdrs"),
        ("commands", "SENDER", f"{base}/ocpi/emsp/{version}/commands"),
        ("commands", "RECEIVER", f"{base}/ocpi/cpo/{version}/commands"),
        # mod_charging_profiles: the CPO implements the Receiver interface;
        # the eMSP (or SCSP) the Sender interface, where results and
        # ActiveChargingProfile updates arrive.
        ("chargingprofiles", "SENDER", f"{base}/ocpi/emsp/{version}/chargingprofiles"),
        ("chargingprofiles", "RECEIVER", f"{base}/ocpi/cpo/{version}/chargingprofiles"),
        # A hub tells us who is reachable behind it (docs/adr/0044); the
        # Sender lists back what the calling hub reported.
        ("hubclientinfo", "RECEIVER", f"{base}/ocpi/{version}/hubclientinfo"),
        ("hubclientinfo", "SENDER", f"{base}/ocpi/{version}/hubclientinfo"),
    ]
    found = [Endpoint(identifier=i, role=InterfaceRole(r), url=u) for i, r, u in listed]
    if "payments" in wire(version).modules:  # 2.3.0 only (api/ocpi/payments.py)
        found.append(payments_endpoint(base))
    return found


@router.get("/versions")
async def versions(_: CallerDep, c: ContainerDep) -> dict[str, Any]:
    base = c.settings.base_url
    # Highest first: a client that takes the first entry gets the best one.
    offered = sorted(c.settings.offered_versions, key=version_key, reverse=True)
    return envelope([{"version": v, "url": f"{base}/ocpi/{v}"} for v in offered])


@router.get("/{version}")
async def version_details(
    version: VersionPath, caller: CallerDep, c: ContainerDep
) -> dict[str, Any]:
    # The caller dependency refused a version we do not offer (3002).
    role = caller.partner.invited_as or next((r.role for r in caller.partner.roles), None)
    shown = wire(version).endpoints_out(endpoints(c.settings.base_url, version), role)
    return envelope({"version": version, "endpoints": shown})
