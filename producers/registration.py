"""The network half of a registration: finding a partner's endpoints."""

from __future__ import annotations

from producers.partner_client import PartnerCallError, PartnerClient
from schemas.ocpi.versions import Endpoint

OUR_VERSION = "2.2.1"


class UnsupportedVersionError(PartnerCallError):
    """The partner offers no version we speak (OCPI 3002)."""


async def discover(
    client: PartnerClient, versions_url: str, token: str
) -> tuple[str, str, tuple[Endpoint, ...]]:
    """(version, versions_url, endpoints) of the partner, for OCPI 2.2.1."""
    versions = await client.versions(versions_url, token)
    chosen = next((v for v in versions if v.version == OUR_VERSION), None)
    if chosen is None:
        offered = ", ".join(v.version for v in versions) or "none"
        raise UnsupportedVersionError(f"partner offers {offered}; we speak {OUR_VERSION}")
    details = await client.version_details(str(chosen.url), token)
    if details.version != OUR_VERSION:
        raise UnsupportedVersionError(f"version details are for {details.version}")
    return details.version, versions_url, tuple(details.endpoints)
