"""Credentials module objects (credentials.asciidoc)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AnyHttpUrl, Field, StringConstraints

from schemas.ocpi.common import OcpiModel
from schemas.ocpi.locations import BusinessDetails

# credentials.asciidoc, Credentials.token: string(64), printable non-whitespace ASCII.
CredentialsToken = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\x21-\x7E]+$")
]


class Role(StrEnum):
    """types.asciidoc, Role enum."""

    CPO = "CPO"
    EMSP = "EMSP"
    HUB = "HUB"
    NAP = "NAP"
    NSP = "NSP"
    OTHER = "OTHER"
    SCSP = "SCSP"


class CredentialsRole(OcpiModel):
    """CredentialsRole _class_."""

    role: Role
    business_details: BusinessDetails
    party_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{3}$")]
    country_code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]


class Credentials(OcpiModel):
    """Credentials object. Every role needs a unique (role, party_id, country_code)."""

    token: CredentialsToken
    url: AnyHttpUrl
    roles: list[CredentialsRole] = Field(min_length=1)
