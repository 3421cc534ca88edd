"""Credentials and versions objects of OCPI 2.1.1 (credentials.md,
version_information_endpoint.md, tag 2.1.1-d2): the party at the top level,
no roles; endpoints without a role."""

from __future__ import annotations

from typing import Annotated

from pydantic import AnyHttpUrl, Field, StringConstraints

from schemas.ocpi.common import OcpiModel
from schemas.ocpi.credentials import CredentialsToken
from schemas.ocpi.locations import BusinessDetails


class Credentials(OcpiModel):
    """2.1.1 Credentials object."""

    token: CredentialsToken
    url: AnyHttpUrl
    business_details: BusinessDetails
    party_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{3}$")]
    country_code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]


class Endpoint(OcpiModel):
    """2.1.1 Endpoint class: a module and its URL (the party's role says
    which interface it is)."""

    identifier: str = Field(max_length=32)
    url: AnyHttpUrl


class VersionDetails(OcpiModel):
    """2.1.1 version details endpoint, Data."""

    version: str = Field(max_length=10)
    endpoints: list[Endpoint] = Field(min_length=1)
