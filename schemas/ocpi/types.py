"""OCPI 2.2.1 types shared by several modules (spec: ``types.asciidoc``), plus
``TokenType`` (``mod_tokens.asciidoc``), which Locations needs before the
Tokens module exists.

``DateTime``, ``CountryCode``, ``PartyId`` and the ``OcpiModel`` base live in
``schemas.ocpi.common``; this module adds the string flavours, URL, number and
DisplayText.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from annotated_types import Ge, Gt, Le, Lt
from pydantic import AfterValidator, BaseModel, Strict, StringConstraints

from schemas.ocpi.common import OcpiModel
from schemas.ocpi.limits import INT_FIELD_MAX, NUMBER_FIELD_BOUND

# types.asciidoc, CiString: "Only printable ASCII allowed".
PRINTABLE_ASCII = r"^[\x20-\x7E]*$"
# types.asciidoc, string: "Only printable UTF-8 allowed (Non-printable characters
# like: Carriage returns, Tabs, Line breaks, etc are not allowed)". We refuse the
# C0 and C1 control characters and DEL; everything else in Unicode passes.
PRINTABLE_UTF8 = r"^[^\x00-\x1F\x7F-\x9F]*$"


def ci(max_length: int) -> StringConstraints:
    """Constraints of ``CiString(n)``, for ``Annotated[str, ci(n)]``.

    Compared case-insensitively (``common.fold``), stored as received. Empty
    strings are refused, as ``common.ci_string`` does: every CiString in the
    spec is an identifier or a code.
    """
    return StringConstraints(min_length=1, max_length=max_length, pattern=PRINTABLE_ASCII)


def string(max_length: int) -> StringConstraints:
    """Constraints of ``string(n)``, for ``Annotated[str, string(n)]``.

    Case-sensitive, printable UTF-8; the spec gives no minimum length.
    """
    return StringConstraints(max_length=max_length, pattern=PRINTABLE_UTF8)


_URL_MAX_LEN = 255  # types.asciidoc, URL: string(255)


def _check_url(value: str) -> str:
    # types.asciidoc, URL: "string(255) following the w3.org spec". Every URL
    # field in OCPI is something to fetch or open (image, website, terms), so we
    # require an absolute URL (scheme and host) of printable ASCII without
    # spaces, and keep the text exactly as received (no normalisation, so a
    # round trip gives the same string back).
    if not all("\x21" <= ch <= "\x7e" for ch in value):
        raise ValueError("a URL must be printable ASCII without spaces")
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc:
        raise ValueError("must be an absolute URL with a scheme and a host")
    return value


Url = Annotated[
    str, StringConstraints(min_length=1, max_length=_URL_MAX_LEN), AfterValidator(_check_url)
]

# types.asciidoc, number: a JSON number. Strict so that "12.5" (a string) and
# booleans are refused instead of coerced; JSON integers are accepted. The
# range is what the views hold (schemas/ocpi/limits.py, docs/adr/0027).
Number = Annotated[float, Strict(), Gt(-NUMBER_FIELD_BOUND), Lt(NUMBER_FIELD_BOUND)]
# OCPI "int": a JSON integer; strings, floats and booleans are refused. 32
# bits, as MySQL's INT columns hold them (docs/adr/0027).
Int = Annotated[int, Strict(), Ge(-INT_FIELD_MAX - 1), Le(INT_FIELD_MAX)]
Bool = Annotated[bool, Strict()]


class DisplayText(OcpiModel):
    """types.asciidoc, DisplayText class: a text in one language."""

    # string(2), ISO 639-1. Two letters; language codes are case-insensitive
    # (BCP 47), so "en" and "EN" both pass.
    language: Annotated[str, StringConstraints(max_length=2, pattern=r"^[A-Za-z]{2}$")]
    text: Annotated[str, string(512)]


class TokenType(StrEnum):
    """mod_tokens.asciidoc, TokenType enum (used by Locations' PublishTokenType)."""

    AD_HOC_USER = "AD_HOC_USER"
    APP_USER = "APP_USER"
    OTHER = "OTHER"
    RFID = "RFID"


def to_json(obj: BaseModel) -> dict[str, Any]:
    """The JSON-able form we store and send: absent optional fields stay absent."""
    return obj.model_dump(mode="json", exclude_none=True)
