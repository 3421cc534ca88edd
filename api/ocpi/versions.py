"""Versions module (version_information_endpoint.asciidoc): the versions we
speak and, per version, the endpoints we offer. TOKEN_A is accepted here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth import CallerDep
from api.deps import ContainerDep
from api.errors import OcpiError, envelope
from schemas.ocpi.status_codes import OcpiStatus

router = APIRouter(prefix="/ocpi", tags=["ocpi: versions"])

SUPPORTED = ("2.2.1",)


@router.get("/versions")
async def versions(_: CallerDep, c: ContainerDep) -> dict[str, Any]:
    base = c.settings.base_url
    return envelope([{"version": v, "url": f"{base}/ocpi/{v}"} for v in SUPPORTED])


@router.get("/{version}")
async def version_details(version: str, _: CallerDep, c: ContainerDep) -> dict[str, Any]:
    if version not in SUPPORTED:
        raise OcpiError(OcpiStatus.UNSUPPORTED_VERSION, f"unsupported version {version!r}", 404)
    base = c.settings.base_url
    endpoints = [
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
    return envelope(
        {
            "version": version,
            "endpoints": [{"identifier": i, "role": r, "url": u} for i, r, u in endpoints],
        }
    )
