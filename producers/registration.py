"""The network half of a registration: finding a partner's version and
endpoints (version_information_endpoint; docs/adr/0045)."""

from __future__ import annotations

from producers.partner_client import PartnerCallError, PartnerClient
from schemas.ocpi.adapters import wire
from schemas.ocpi.credentials import Role
from schemas.ocpi.versions import Endpoint
from schemas.ocpi.wire import highest_common


class UnsupportedVersionError(PartnerCallError):
    """The partner offers no version we speak (OCPI 3002)."""


async def discover(
    client: PartnerClient,
    versions_url: str,
    token: str,
    *,
    offered: tuple[str, ...],
    partner_role: Role | None = None,
) -> tuple[str, str, tuple[Endpoint, ...]]:
    """(version, versions_url, endpoints) of the partner, for the highest
    version it and ``offered`` have in common. ``partner_role``: its role,
    which a 2.1.1 partner's endpoints need to be read (they name none)."""
    versions = await client.versions(versions_url, token)
    version = highest_common(offered, [v.version for v in versions])
    if version is None:
        theirs = ", ".join(v.version for v in versions) or "none"
        raise UnsupportedVersionError(
            f"partner offers {theirs}; we speak {', '.join(offered) or 'none'}"
        )
    if wire(version).needs_partner_role and partner_role not in (Role.CPO, Role.EMSP):
        raise UnsupportedVersionError(
            f"OCPI {version} names no roles: the partner's role (CPO or EMSP) must be "
            "given when it is invited or registered with"
        )
    url = next(str(v.url) for v in versions if v.version == version)
    details = await client.version_details(url, token, version=version, partner_role=partner_role)
    if details.version != version:
        raise UnsupportedVersionError(f"version details are for {details.version}, not {version}")
    return version, versions_url, tuple(details.endpoints)
