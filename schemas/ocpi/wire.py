"""The OCPI versions we speak on the wire, each an edge adapter around our
one model (docs/adr/0045).

Our events, views and rules hold OCPI 2.2.1-shaped objects, whatever version
a partner speaks. A ``WireVersion`` converts at the edge only: what a
partner sends in its version becomes our model (``object_in``), what we
serve or push becomes its version (``object_out``), and it says how its
transport differs (the token un-encoded or base64, routing headers or not).
The routes, the write path and the push lanes are the same for every
version; they ask ``schemas.ocpi.adapters.wire(version)`` for the adapter.

2.2.1 is our model: its adapter changes nothing. A new version (2.3.0) is a
module ``schemas/ocpi/v230/adapter.py`` with one ``WireVersion`` and an
entry in ``schemas.ocpi.adapters.WIRES``, plus its version in the routes' ``VersionPath`` where
it serves a module (api/ocpi/paths.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from schemas.ocpi.credentials import Credentials, Role
from schemas.ocpi.versions import Endpoint, VersionDetails


class Kind(StrEnum):
    """The objects an adapter converts, one per OCPI object shape."""

    LOCATION = "location"
    EVSE = "evse"
    CONNECTOR = "connector"
    TARIFF = "tariff"
    TOKEN = "token"  # noqa: S105 (an object kind, not a secret)
    AUTHORIZATION = "authorization"
    SESSION = "session"
    CDR = "cdr"
    # Commands: one kind per request object (its CommandType, lower case),
    # the CPO's immediate answer, and the result it sends to response_url.
    CANCEL_RESERVATION = "cancel_reservation"
    RESERVE_NOW = "reserve_now"
    START_SESSION = "start_session"
    STOP_SESSION = "stop_session"
    UNLOCK_CONNECTOR = "unlock_connector"
    COMMAND_RESPONSE = "command_response"
    COMMAND_RESULT = "command_result"


@dataclass(frozen=True)
class EdgeContext:
    """What a version's object needs that our object does not hold, looked
    up by the caller (the adapters do no I/O). 2.1.1 Sessions and CDRs embed
    the whole Location and name the token by its ``auth_id``
    (``WireVersion.embeds_location``): ``location`` is our Location (the
    location view's object) for the way out, ``token`` our CdrToken whose
    ``contract_id`` the partner's ``auth_id`` names, for the way in."""

    location: dict[str, Any] | None = None
    token: dict[str, Any] | None = None


class WireVersion(Protocol):
    """One OCPI version at the edge."""

    @property
    def version(self) -> str: ...

    @property
    def raw_token(self) -> bool:
        """The Authorization header carries the token un-encoded (2.1.1),
        not base64-encoded (2.2 and later)."""
        ...

    @property
    def routing_headers(self) -> bool:
        """Functional modules carry the OCPI-from/to headers (2.2 and later)."""
        ...

    @property
    def embeds_location(self) -> bool:
        """Its Sessions and CDRs embed the Location and name the token by
        ``auth_id`` (2.1.1): callers pass an ``EdgeContext``."""
        ...

    @property
    def modules(self) -> frozenset[str]:
        """The functional modules we serve in this version (module ids)."""
        ...

    def object_in(
        self,
        kind: Kind,
        body: Any,
        *,
        owner: tuple[str, str] | None,
        patch: bool,
        now: datetime,
        context: EdgeContext | None = None,
    ) -> Any:
        """A partner's object (or PATCH fragment) in our model. ``owner``:
        the (country_code, party_id) of the URL. Raises
        ``pydantic.ValidationError`` (OCPI 2001) for what the version refuses."""
        ...

    def object_out(
        self, kind: Kind, obj: dict[str, Any], *, patch: bool, context: EdgeContext | None = None
    ) -> dict[str, Any]:
        """Our object (or PATCH fragment) in this version's shape."""
        ...

    def credentials_in(self, body: Any, partner_role: Role | None) -> Credentials:
        """A partner's credentials in our model (2.2.1: a list of roles)."""
        ...

    def credentials_out(self, ours: Credentials) -> dict[str, Any]:
        """Our credentials in this version's shape."""
        ...

    @property
    def token_type_in_url(self) -> bool:
        """Token URLs carry ``?type=`` (2.2 and later); 2.1.1's name the uid only."""
        ...

    @property
    def needs_partner_role(self) -> bool:
        """The version names no roles (2.1.1): the partner's role (CPO or
        eMSP) must be known from its invitation to read its endpoints."""
        ...

    def details_in(self, body: Any, partner_role: Role | None) -> VersionDetails:
        """A partner's version details, its endpoints with their interface role."""
        ...

    def endpoints_out(
        self, endpoints: list[Endpoint], partner_role: Role | None
    ) -> list[dict[str, Any]]:
        """Our endpoints in this version's shape, for a partner of ``partner_role``."""
        ...


class Core:
    """OCPI 2.2.1, our own model: nothing to convert."""

    version = "2.2.1"
    raw_token = False
    routing_headers = True
    token_type_in_url = True
    needs_partner_role = False
    embeds_location = False
    modules = frozenset(
        {"locations", "tariffs", "tokens", "sessions", "cdrs", "commands", "credentials"}
    )

    def object_in(
        self,
        kind: Kind,
        body: Any,
        *,
        owner: tuple[str, str] | None,
        patch: bool,
        now: datetime,
        context: EdgeContext | None = None,
    ) -> Any:
        return body  # the slice's decide validates it against our model

    def object_out(
        self, kind: Kind, obj: dict[str, Any], *, patch: bool, context: EdgeContext | None = None
    ) -> dict[str, Any]:
        return obj

    def credentials_in(self, body: Any, partner_role: Role | None) -> Credentials:
        return Credentials.model_validate(body)

    def credentials_out(self, ours: Credentials) -> dict[str, Any]:
        return ours.model_dump(mode="json")

    def details_in(self, body: Any, partner_role: Role | None) -> VersionDetails:
        return VersionDetails.model_validate(body)

    def endpoints_out(
        self, endpoints: list[Endpoint], partner_role: Role | None
    ) -> list[dict[str, Any]]:
        return [e.model_dump(mode="json") for e in endpoints]


CORE_VERSION = "2.2.1"


def version_key(version: str) -> tuple[int, ...]:
    """Orders version numbers as numbers ("2.10" after "2.2")."""
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


def highest_common(ours: tuple[str, ...], theirs: list[str]) -> str | None:
    """The highest version both sides speak (credentials.asciidoc: the
    registration picks one), None when there is none."""
    common = set(ours) & set(theirs)
    return max(common, key=version_key) if common else None
