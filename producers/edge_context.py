"""The lookups an OCPI version's Sessions and CDRs need beside the object
(docs/adr/0045 §7): the edge adapters do no I/O, so their callers (the
routes, the push lanes, the pull syncs) find what ``EdgeContext`` carries.

OCPI 2.1.1 names the token of a Session or CDR by its ``auth_id`` only
(the Token's auth_id, our ``contract_id``): on the way in, our token with
that contract id is looked up among the tokens we issued (the token view;
the Sessions and CDRs slices then check it against the Tokens slice's
state, as for every version). 2.1.1 embeds the whole Location: on the way
out, our Location under the object's reference is read from the location
view, as it is served to partners now.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from producers.write_path import RefusedError
from schemas.events import Party
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.wire import EdgeContext, WireVersion

Json = dict[str, Any]
# A Location as the location view serves it: (country_code, party_id, id) -> object.
LocationOf = Callable[[str, str, str], Awaitable[Json | None]]


class TokenDirectory(Protocol):
    async def by_contract_id(
        self, country_code: str, party_id: str, contract_id: str
    ) -> list[Json]:
        """``projections.mongo.tokens.TokenViewQuery``: newest first."""
        ...


async def context_in(
    edge: WireVersion, body: Any, tokens: TokenDirectory, us: Party
) -> EdgeContext | None:
    """The token a partner's Session or CDR (or PATCH) names by ``auth_id``;
    None when its version names tokens as we do, or the body names none. A
    contract id we never issued is 2004, nothing recorded."""
    if not edge.embeds_location or not isinstance(body, dict):
        return None
    auth_id = body.get("auth_id")
    if not isinstance(auth_id, str):
        return None  # absent (a PATCH), or refused by the version's validation
    found = await tokens.by_contract_id(us.country_code, us.party_id, auth_id)
    if not found:
        raise RefusedError(
            OcpiStatus.UNKNOWN_TOKEN, f"we issued no token with auth_id (contract id) {auth_id!r}"
        )
    token = found[0]
    return EdgeContext(
        token={
            "country_code": us.country_code,
            "party_id": us.party_id,
            "uid": token["uid"],
            "type": token["type"],
            "contract_id": token["contract_id"],
        }
    )


def location_named(obj: Json) -> str | None:
    """The location id a Session (``location_id``) or CDR (``cdr_location``) names."""
    where = obj.get("cdr_location")
    named = where.get("id") if isinstance(where, dict) else obj.get("location_id")
    return named if isinstance(named, str) else None


async def context_out(
    edge: WireVersion, obj: Any, owner: tuple[str, str], location_of: LocationOf
) -> EdgeContext | None:
    """Our Location a Session or CDR of ``owner`` (its CPO) names, for a
    version that embeds it; None otherwise or when it names none."""
    if not edge.embeds_location or not isinstance(obj, dict):
        return None
    location_id = location_named(obj)
    if location_id is None:
        return None
    return EdgeContext(location=await location_of(owner[0], owner[1], location_id))
