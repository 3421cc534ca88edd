"""Credentials object of OCPI 2.3.0 (credentials.asciidoc, tag v2.3.0).

New: ``hub_party_id``, the country code and party id of the platform's
Hub concatenated (CiString(5)), given by a platform that routes messages
with the routing headers. 2.3.0 drops the HUB role: a hub lists the
parties reachable through it as roles instead (the HubClientInfo module is
unchanged and still reports their connection status). ``V230.credentials_in``
reads this model into ours.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AnyHttpUrl, Field, StringConstraints

from schemas.ocpi.common import OcpiModel
from schemas.ocpi.credentials import CredentialsToken
from schemas.ocpi.v230.locations import BusinessDetails
from schemas.ocpi.v230.types import Role

# Two letters of country code then three of party id (CiString(5)).
HubPartyId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}[A-Za-z0-9]{3}$")]


class CredentialsRole(OcpiModel):
    """credentials.asciidoc, CredentialsRole class."""

    role: Role
    business_details: BusinessDetails
    party_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{3}$")]
    country_code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]


class Credentials(OcpiModel):
    """credentials.asciidoc, Credentials object (2.3.0)."""

    token: CredentialsToken
    url: AnyHttpUrl
    hub_party_id: HubPartyId | None = None
    roles: list[CredentialsRole] = Field(min_length=1)
