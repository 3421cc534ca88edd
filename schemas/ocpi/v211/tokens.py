"""Tokens module objects of OCPI 2.1.1 (mod_tokens.md, tag 2.1.1-d2).

A 2.1.1 Token has no owner party (the URL names it), ``auth_id`` where
2.2.1 says ``contract_id``, two token types, and no group, profile or
energy contract."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from schemas.ocpi.common import DateTime, OcpiModel
from schemas.ocpi.tokens import AllowedType, Language, WhitelistType
from schemas.ocpi.types import Bool, DisplayText, ci, string


class TokenType(StrEnum):
    """2.1.1 TokenType enum."""

    OTHER = "OTHER"
    RFID = "RFID"


class Token(OcpiModel):
    """2.1.1 Token Object."""

    uid: Annotated[str, ci(36)]
    type: TokenType
    auth_id: Annotated[str, ci(36)]
    visual_number: Annotated[str, string(64)] | None = None
    issuer: Annotated[str, string(64)]
    valid: Bool
    whitelist: WhitelistType
    language: Language | None = None
    last_updated: DateTime


class LocationReferences(OcpiModel):
    """2.1.1 LocationReferences class (``connector_ids`` went in 2.2.1)."""

    location_id: Annotated[str, ci(36)]
    evse_uids: list[Annotated[str, ci(36)]] | None = None
    connector_ids: list[Annotated[str, ci(36)]] | None = None


class AuthorizationInfo(OcpiModel):
    """2.1.1 AuthorizationInfo Object (no token, no authorization_reference)."""

    allowed: AllowedType
    location: LocationReferences | None = None
    info: DisplayText | None = None
