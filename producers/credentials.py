"""The credentials slice's application service: registration both ways.

Shells (the HTTP credentials endpoint, the ``ocpi-hub partners`` commands)
call these; each step decides with the pure functions in ``partners.py``,
records the events, and applies them to the partners view before returning,
so the very next request with a new token is recognised (read-your-writes;
the projection runner applies the same events again, harmlessly).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from producers.log import EventLog
from producers.partner_client import PartnerClient
from producers.partners import (
    PartnerState,
    decide_connection,
    decide_invite,
    decide_unregister,
)
from producers.registration import discover
from projections.mongo.partners import PartnerQuery, PartnerViewWriter
from projections.position import Record
from schemas.events import EventMeta, Party
from schemas.events.partners import PartnerConnectionPayload
from schemas.ocpi.credentials import Credentials, CredentialsRole, Role
from schemas.ocpi.locations import BusinessDetails


class Sealer(Protocol):
    """What the service needs of the token vault."""

    def encrypt(self, token: str) -> str: ...

    def decrypt(self, sealed: str) -> str: ...


@dataclass
class CredentialsService:
    log: EventLog
    partners: PartnerQuery
    view: PartnerViewWriter
    client: PartnerClient
    vault: Sealer
    us: Party
    business_name: str
    versions_url: str

    def our_credentials(self, token: str) -> Credentials:
        """Our credentials object: we play CPO and eMSP under one party."""
        roles = [
            CredentialsRole(
                role=role,
                business_details=BusinessDetails(name=self.business_name),
                country_code=self.us.country_code,
                party_id=self.us.party_id,
            )
            for role in (Role.CPO, Role.EMSP)
        ]
        return Credentials(token=token, url=self.versions_url, roles=roles)

    async def _record(self, events: Sequence[EventMeta]) -> None:
        positions = await self.log.append(events)
        records = [
            Record(p.topic, p.partition, p.offset, e)
            for p, e in zip(positions, events, strict=True)
        ]
        self.view.apply(records)

    async def invite(
        self,
        *,
        partner_id: str,
        country_code: str | None,
        party_id: str | None,
        role: Role | None,
        token_a_hash: str,
        legacy_token: bool,
        correlation_id: str,
    ) -> None:
        events = decide_invite(
            self.partners.get(partner_id),
            partner_id=partner_id,
            country_code=country_code,
            party_id=party_id,
            role=role,
            token_a_hash=token_a_hash,
            legacy_token=legacy_token,
            now=datetime.now(UTC),
            us=self.us,
            correlation_id=correlation_id,
        )
        await self._record(events)

    async def accept(
        self,
        state: PartnerState,
        method: Literal["POST", "PUT"],
        theirs: Credentials,
        new_token_hash: str,
        correlation_id: str,
    ) -> None:
        """They POST (register) or PUT (update) their credentials to us: fetch
        their endpoints with their token, then record the connection."""
        version, versions_url, endpoints = await discover(
            self.client, str(theirs.url), theirs.token
        )
        connection = PartnerConnectionPayload(
            partner_id=state.partner_id,
            direction="inbound",
            version=version,
            versions_url=versions_url,
            endpoints=endpoints,
            roles=tuple(theirs.roles),
            their_token_hash=new_token_hash,
            our_token_encrypted=self.vault.encrypt(theirs.token),
            legacy_token=state.legacy_token,
        )
        events = decide_connection(
            state,
            method=method,
            connection=connection,
            now=datetime.now(UTC),
            source=_party_of(theirs),
            correlation_id=correlation_id,
        )
        await self._record(events)

    async def register_with(
        self,
        *,
        versions_url: str,
        token_a: str,
        our_token: str,
        our_token_hash: str,
        partner_id: str | None,
    ) -> PartnerState:
        """We register with a partner that gave us its TOKEN_A."""
        version, versions_url, endpoints = await discover(self.client, versions_url, token_a)
        credentials_url = next(
            (str(e.url) for e in endpoints if e.identifier == "credentials"), None
        )
        if credentials_url is None:
            raise LookupError("the partner offers no credentials endpoint")
        pid = partner_id or f"P-{uuid.uuid4().hex[:8].upper()}"
        # They will call our versions endpoint with our_token while handling
        # the POST: let it be known first, as a pending invite.
        await self.invite(
            partner_id=pid,
            country_code=None,
            party_id=None,
            role=None,
            token_a_hash=our_token_hash,
            legacy_token=False,
            correlation_id=str(uuid.uuid4()),
        )
        theirs = await self.client.post_credentials(
            credentials_url, token_a, self.our_credentials(our_token)
        )
        connection = PartnerConnectionPayload(
            partner_id=pid,
            direction="outbound",
            version=version,
            versions_url=versions_url,
            endpoints=endpoints,
            roles=tuple(theirs.roles),
            their_token_hash=our_token_hash,
            our_token_encrypted=self.vault.encrypt(theirs.token),
        )
        events = decide_connection(
            self.partners.get(pid),
            method="POST",
            connection=connection,
            now=datetime.now(UTC),
            source=self.us,
            correlation_id=str(uuid.uuid4()),
        )
        await self._record(events)
        state = self.partners.get(pid)
        assert state is not None
        return state

    def _credentials_url(self, state: PartnerState) -> str:
        url = next((str(e.url) for e in state.endpoints if e.identifier == "credentials"), None)
        if url is None:
            raise LookupError(f"partner {state.partner_id} offers no credentials endpoint")
        return url

    def _registered(self, partner_id: str) -> PartnerState:
        state = self.partners.get(partner_id)
        if state is None or state.status != "registered" or state.our_token_encrypted is None:
            raise LookupError(f"{partner_id} is not a registered partner")
        return state

    async def update_with(
        self, partner_id: str, *, new_token: str, new_token_hash: str
    ) -> PartnerState:
        """We rotate the token the partner uses to call us (credentials PUT
        towards them, credentials.asciidoc "PUT"). They fetch our versions
        with the new token while handling the PUT, so it is valid first; if
        the PUT fails, the old one is restored."""
        state = self._registered(partner_id)
        credentials_url = self._credentials_url(state)
        assert state.our_token_encrypted and state.version and state.versions_url
        assert state.their_token_hash
        current = self.vault.decrypt(state.our_token_encrypted)
        base = PartnerConnectionPayload(
            partner_id=state.partner_id,
            direction=state.direction or "outbound",
            version=state.version,
            versions_url=state.versions_url,
            endpoints=state.endpoints,
            roles=state.roles,
            their_token_hash=new_token_hash,
            our_token_encrypted=state.our_token_encrypted,
            legacy_token=state.legacy_token,
        )
        await self._update(state, base)
        try:
            theirs = await self.client.put_credentials(
                credentials_url, current, self.our_credentials(new_token)
            )
            version, versions_url, endpoints = await discover(
                self.client, str(theirs.url), theirs.token
            )
        except Exception:
            restored = base.model_copy(update={"their_token_hash": state.their_token_hash})
            await self._update(self._registered(partner_id), restored)
            raise
        await self._update(
            self._registered(partner_id),
            base.model_copy(
                update={
                    "version": version,
                    "versions_url": versions_url,
                    "endpoints": endpoints,
                    "roles": tuple(theirs.roles),
                    "our_token_encrypted": self.vault.encrypt(theirs.token),
                }
            ),
        )
        return self._registered(partner_id)

    async def unregister_with(self, partner_id: str, *, tell_partner: bool = True) -> None:
        """We end the registration (credentials DELETE towards the partner),
        then record it; a partner that cannot be reached stays registered,
        unless ``tell_partner`` is off (a partner that is gone for good)."""
        state = self._registered(partner_id)
        assert state.our_token_encrypted is not None
        if tell_partner:
            await self.client.delete_credentials(
                self._credentials_url(state), self.vault.decrypt(state.our_token_encrypted)
            )
        await self.unregister(state, self.us, str(uuid.uuid4()))

    async def _update(self, state: PartnerState, connection: PartnerConnectionPayload) -> None:
        events = decide_connection(
            state,
            method="PUT",
            connection=connection,
            now=datetime.now(UTC),
            source=self.us,
            correlation_id=str(uuid.uuid4()),
        )
        await self._record(events)

    async def unregister(self, state: PartnerState, source: Party, correlation_id: str) -> None:
        events = decide_unregister(
            state, now=datetime.now(UTC), source=source, correlation_id=correlation_id
        )
        await self._record(events)


def _party_of(credentials: Credentials) -> Party:
    first = credentials.roles[0]
    return Party(country_code=first.country_code.upper(), party_id=first.party_id.upper())
