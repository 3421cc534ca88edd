"""Sessions and CDRs at the edge of a partner's OCPI version (docs/adr/0045
§7): the adapter of the route's version, with the lookups its objects need
(``producers.edge_context``: 2.1.1 names the token by ``auth_id`` and
embeds the whole Location). For our own version both are pass-throughs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request

from api.auth import wire_of
from api.deps import ContainerDep, LocationViewDep, TokenViewDep
from producers.edge_context import context_in, context_out
from projections.mongo.locations import LocationViewQuery
from projections.mongo.tokens import TokenViewQuery
from schemas.events import Party
from schemas.ocpi.wire import Kind, WireVersion

Json = dict[str, Any]


@dataclass(frozen=True)
class Edge:
    wire: WireVersion
    tokens: TokenViewQuery
    locations: LocationViewQuery
    us: Party

    async def into_ours(
        self, kind: Kind, body: Any, owner: tuple[str, str], *, patch: bool, now: datetime
    ) -> Any:
        """A partner's Session or CDR (or PATCH) in our model; 2001 for what
        its version refuses, 2004 for a token we never issued (2.1.1)."""
        context = await context_in(self.wire, body, self.tokens, self.us)
        return self.wire.object_in(kind, body, owner=owner, patch=patch, now=now, context=context)

    async def out(self, kind: Kind, obj: Json, owner: tuple[str, str]) -> Json:
        """One of our Sessions or CDRs (``owner``: its CPO) in the version's shape."""
        context = await context_out(self.wire, obj, owner, self.locations.get)
        return self.wire.object_out(kind, obj, patch=False, context=context)


def _edge(
    request: Request, c: ContainerDep, tokens: TokenViewDep, locations: LocationViewDep
) -> Edge:
    s = c.settings
    us = Party(country_code=s.party_country_code, party_id=s.party_id)
    return Edge(wire_of(request), tokens, locations, us)


EdgeDep = Annotated[Edge, Depends(_edge)]
