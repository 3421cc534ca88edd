"""Tokens module objects of OCPI 2.3.0 (mod_tokens.asciidoc, tag v2.3.0).

The one difference from 2.2.1 (``schemas.ocpi.tokens``): TokenType is an
OpenEnum. 2.3.0 lists ``EMAID`` (ISO 15118 contract identities; the spec
advises eMSPs not to push such tokens) and allows values of an
implementer's own. A value 2.2.1 does not list is kept as its string here;
the mapping gives our core Token the stand-in ``OTHER`` and keeps the value
(schemas/ocpi/v230/mapping.py, ``token_json``).
"""

from __future__ import annotations

from schemas.ocpi import tokens as v221
from schemas.ocpi.v230.locations import OpenTokenType


class Token(v221.Token):
    """mod_tokens, Token object (2.3.0): 2.2.1's with an open ``type``."""

    type: OpenTokenType  # type: ignore[assignment]  # widened: OpenEnum in 2.3.0


class AuthorizationInfo(v221.AuthorizationInfo):
    """mod_tokens, AuthorizationInfo object (2.3.0): an eMSP's answer to our
    real-time authorization, its Token 2.3.0's."""

    token: Token
