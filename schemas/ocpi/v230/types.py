"""OCPI 2.3.0 types (``types.asciidoc`` of tag v2.3.0): OpenEnum, the new
Price (``before_taxes`` and a list of TaxAmount) and the Role enum.

An OpenEnum field takes the values the spec lists and any other string
("room for implementers to use other values"). We keep a value we do not
know exactly as received and send it back unchanged; a known value is the
member of our enum, so code can compare it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import Field, PlainSerializer

from schemas.ocpi.common import OcpiModel
from schemas.ocpi.tariffs import ExactNumber
from schemas.ocpi.types import PRINTABLE_ASCII, string

E = TypeVar("E", bound=StrEnum)

# The spec gives no length for values it does not list; the views hold
# strings of this length in their indexed fields (docs/adr/0027), and RFC
# 6648-style names are short.
OPEN_ENUM_VALUE_MAX = 255
_PRINTABLE = re.compile(PRINTABLE_ASCII)


def open_enum_validator(enum: type[E]) -> Callable[[Any], E | str]:
    """The validator of ``OpenEnum<enum>``: a listed value becomes its
    member; another non-empty printable ASCII string is kept as it is."""

    def check(value: Any) -> E | str:
        if isinstance(value, enum):
            return value
        if not isinstance(value, str):
            raise ValueError("an OpenEnum value must be a string")
        try:
            return enum(value)
        except ValueError:
            pass
        if not 1 <= len(value) <= OPEN_ENUM_VALUE_MAX or not _PRINTABLE.match(value):
            raise ValueError(
                f"a value not listed by the spec must be 1 to {OPEN_ENUM_VALUE_MAX} "
                "printable ASCII characters"
            ) from None
        return value

    return check


def _as_text(value: StrEnum | str) -> str:
    return str(value)


# The serializer of every OpenEnum field: the value as a JSON string.
AS_TEXT = PlainSerializer(_as_text, return_type=str)


def is_listed(value: StrEnum | str, enum: type[StrEnum]) -> bool:
    """Whether an OpenEnum value is one our (2.2.1) enum lists."""
    return isinstance(value, enum)


class Role(StrEnum):
    """types.asciidoc (2.3.0), Role enum. 2.3.0 drops HUB: a hub names
    itself in ``Credentials.hub_party_id`` and lists the parties behind it
    as roles (credentials.asciidoc)."""

    CPO = "CPO"
    EMSP = "EMSP"
    NAP = "NAP"
    NSP = "NSP"
    OTHER = "OTHER"
    SCSP = "SCSP"
    # Not a 2.3.0 value; accepted from partners that kept their 2.2.1 roles
    # (liberal in what we accept), never sent by us.
    HUB = "HUB"


class TaxAmount(OcpiModel):
    """types.asciidoc (2.3.0), TaxAmount class: one tax on a Price."""

    # string, no length given; 2.3.0's examples use "VAT", Canada's "QST".
    name: Annotated[str, string(255), Field(min_length=1)]
    account_number: Annotated[str, string(255)] | None = None
    percentage: Annotated[ExactNumber, Field(ge=0)] | None = None
    # Negative on a Credit CDR, as every amount there.
    amount: ExactNumber


class Price(OcpiModel):
    """types.asciidoc (2.3.0), Price class: the amount before taxes and the
    taxes "applicable to this price and relevant to the receiver"."""

    before_taxes: ExactNumber
    taxes: list[TaxAmount] | None = None

    def after_taxes(self) -> Decimal | None:
        """before_taxes plus every tax; None when no tax is stated."""
        if self.taxes is None:
            return None
        return self.before_taxes + sum((t.amount for t in self.taxes), Decimal(0))
