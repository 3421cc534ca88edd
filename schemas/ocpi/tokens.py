"""Tokens module objects (OCPI 2.2.1, mod_tokens.asciidoc).

Token, AuthorizationInfo, LocationReferences and EnergyContract with the
module's enums and the spec's field limits, plus ``validate_token_patch`` for
PATCH bodies. As in Locations: unknown fields are kept and unknown enum values refused,
optional fields default to ``None`` and are left out of a dump
(``types.to_json``), so what a partner sent is what we store and send back.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import StringConstraints

from schemas.ocpi.common import CountryCode, DateTime, OcpiModel, PartyId
from schemas.ocpi.patch import ValidatedPatch, validate_patch_body
from schemas.ocpi.types import Bool, DisplayText, TokenType, ci, string

# mod_tokens, Token.uid: CiString(36); LocationReferences ids: CiString(36).
TokenUid = Annotated[str, ci(36)]
# string(2), ISO 639-1 (two letters, either case), as DisplayText.language.
Language = Annotated[str, StringConstraints(max_length=2, pattern=r"^[A-Za-z]{2}$")]


class WhitelistType(StrEnum):
    """mod_tokens, WhitelistType enum: when a CPO may authorize a token
    itself (from the tokens pushed to it) instead of asking the eMSP."""

    ALWAYS = "ALWAYS"
    ALLOWED = "ALLOWED"
    ALLOWED_OFFLINE = "ALLOWED_OFFLINE"
    NEVER = "NEVER"


class AllowedType(StrEnum):
    """mod_tokens, AllowedType enum: the outcome of an authorization."""

    ALLOWED = "ALLOWED"
    BLOCKED = "BLOCKED"
    EXPIRED = "EXPIRED"
    NO_CREDIT = "NO_CREDIT"
    NOT_ALLOWED = "NOT_ALLOWED"


class ProfileType(StrEnum):
    """mod_sessions, ProfileType enum (a Token's ``default_profile_type``)."""

    CHEAP = "CHEAP"
    FAST = "FAST"
    GREEN = "GREEN"
    REGULAR = "REGULAR"


class EnergyContract(OcpiModel):
    """mod_tokens, EnergyContract class: the driver's own energy supplier."""

    supplier_name: Annotated[str, string(64)]
    contract_id: Annotated[str, string(64)] | None = None


class LocationReferences(OcpiModel):
    """mod_tokens, LocationReferences class: where an authorization is asked
    for (a Location and, optionally, some of its EVSEs)."""

    location_id: Annotated[str, ci(36)]
    evse_uids: list[Annotated[str, ci(36)]] | None = None


class Token(OcpiModel):
    """mod_tokens, Token Object. Identified by (``uid``, ``type``) within the
    owning party (``country_code``, ``party_id``)."""

    country_code: CountryCode  # CiString(2)
    party_id: PartyId  # CiString(3)
    uid: TokenUid
    type: TokenType
    contract_id: Annotated[str, ci(36)]
    visual_number: Annotated[str, string(64)] | None = None
    issuer: Annotated[str, string(64)]
    group_id: Annotated[str, ci(36)] | None = None
    valid: Bool
    whitelist: WhitelistType
    language: Language | None = None
    default_profile_type: ProfileType | None = None
    energy_contract: EnergyContract | None = None
    last_updated: DateTime


class AuthorizationInfo(OcpiModel):
    """mod_tokens, AuthorizationInfo Object: the answer to a real-time
    authorization request."""

    allowed: AllowedType
    token: Token
    location: LocationReferences | None = None
    # CiString(36); quoted in the Session and CDR of the charge it allowed.
    authorization_reference: Annotated[str, ci(36)] | None = None
    info: DisplayText | None = None


def validate_token_patch(body: Any) -> ValidatedPatch:
    """Validate the body of a PATCH on a Token (mod_tokens, PATCH Method).

    The same rules as a Location PATCH (``locations.validate_patch``): every
    present field is checked with its type in ``Token``, ``last_updated`` is
    required, ``null`` clears an optional field and is refused on a required
    one, unknown fields are kept. Raises ``pydantic.ValidationError``.
    """
    return validate_patch_body(Token, body)


__all__ = [
    "AllowedType",
    "AuthorizationInfo",
    "DisplayText",
    "EnergyContract",
    "LocationReferences",
    "ProfileType",
    "Token",
    "TokenType",
    "TokenUid",
    "WhitelistType",
    "validate_token_patch",
]
