"""The credentials slice's application service: registration both ways.

Shells (the HTTP credentials endpoint, the ``ocpi-hub partners`` commands)
call these. A registration is a conversation: the partner calls us with the
token we just gave it while we are still talking to it, so each step is
recorded before the next call goes out. Every step records through the one
write path (docs/adr/0022) with a pure decision of ``partners.py`` on the
partner's state as the log holds it; the write path keeps the partner
findable by its new token in the same commit and answers once every API
process dropped the old one from its cache (docs/adr/0024). No call to a
partner is made while its state is held.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from producers.partner_client import PartnerCallError, PartnerClient
from producers.partners import (
    SLICE,
    PartnerState,
    check_connection,
    check_invited_role,
    connection_of,
    decide_connection,
    decide_invite,
    decide_unregister,
)
from producers.registration import UnsupportedVersionError, discover
from producers.write_path import Decision, LogHistory, RefusedError, WritePath
from schemas.events import Party
from schemas.events.partners import PartnerConnectionPayload
from schemas.ocpi.credentials import Credentials, CredentialsRole, Role
from schemas.ocpi.locations import BusinessDetails
from schemas.ocpi.status_codes import OcpiStatus
from schemas.ocpi.wire import CORE_VERSION


class Sealer(Protocol):
    """What the service needs of the token vault."""

    def encrypt(self, token: str) -> str: ...

    def decrypt(self, sealed: str) -> str: ...


def _now() -> datetime:
    return datetime.now(UTC)


def _correlation() -> str:
    return str(uuid.uuid4())


@dataclass
class CredentialsService:
    write_path: WritePath
    client: PartnerClient
    vault: Sealer
    us: Party
    business_name: str
    versions_url: str
    # The OCPI versions we offer, for a registration to pick from (docs/adr/0045).
    versions: tuple[str, ...] = (CORE_VERSION,)

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
    ) -> PartnerState:
        return await self.write_path.write(
            SLICE,
            partner_id,
            lambda state: decide_invite(
                state,
                partner_id=partner_id,
                country_code=country_code,
                party_id=party_id,
                role=role,
                token_a_hash=token_a_hash,
                legacy_token=legacy_token,
                now=_now(),
                us=self.us,
                correlation_id=correlation_id,
            ),
        )

    # -- they register with us (our credentials endpoint) ----------------------

    async def accept(
        self,
        caller: PartnerState,
        presented: str,
        method: Literal["POST", "PUT"],
        theirs: Credentials,
        new_token_hash: str,
        correlation_id: str,
        version: str = CORE_VERSION,
    ) -> PartnerState:
        """They POST (register) or PUT (update) their credentials to us with
        the token whose hash is ``presented``, at our credentials endpoint of
        ``version``: fetch their endpoints of that version with their token,
        then record the connection (in that version, which a PUT may change),
        whose token for us is the one hashed to ``new_token_hash``."""
        check_connection(caller, method)  # before any call to them
        if method == "POST":
            check_invited_role(caller, theirs.roles)
        try:
            version, versions_url, endpoints = await discover(
                self.client,
                str(theirs.url),
                theirs.token,
                offered=(version,),
                partner_role=partner_role(caller),
            )
        except UnsupportedVersionError as exc:
            raise RefusedError(OcpiStatus.UNSUPPORTED_VERSION, str(exc)) from exc
        except PartnerCallError as exc:
            # credentials.asciidoc, "Errors during registration": 3001.
            raise RefusedError(OcpiStatus.UNABLE_TO_USE_CLIENT_API, str(exc)) from exc
        sealed = self.vault.encrypt(theirs.token)
        source = _party_of(theirs)

        def decide(state: PartnerState | None) -> Decision[PartnerState]:
            connection = PartnerConnectionPayload(
                partner_id=caller.partner_id,
                direction="inbound",
                version=version,
                versions_url=versions_url,
                endpoints=endpoints,
                roles=tuple(theirs.roles),
                their_token_hash=new_token_hash,
                our_token_encrypted=sealed,
                legacy_token=state.legacy_token if state is not None else False,
            )
            return decide_connection(
                state,
                method=method,
                connection=connection,
                now=_now(),
                source=source,
                correlation_id=correlation_id,
                presented=presented,
            )

        return await self.write_path.write(SLICE, caller.partner_id, decide)

    async def unregister(
        self, caller: PartnerState, presented: str, correlation_id: str
    ) -> PartnerState:
        """They DELETE their registration, with the token hashed to ``presented``."""
        return await self.write_path.write(
            SLICE,
            caller.partner_id,
            lambda state: decide_unregister(
                state,
                now=_now(),
                source=self.us,
                correlation_id=correlation_id,
                presented=presented,
            ),
        )

    # -- we register with them (the ``ocpi-hub partners`` commands) -------------

    async def register_with(
        self,
        *,
        versions_url: str,
        token_a: str,
        our_token: str,
        our_token_hash: str,
        partner_id: str | None,
        role: Role | None = None,
    ) -> PartnerState:
        """We register with a partner that gave us its TOKEN_A, in the highest
        version we both speak. ``role``: the partner's, which OCPI 2.1.1
        does not tell."""
        version, versions_url, endpoints = await discover(
            self.client, versions_url, token_a, offered=self.versions, partner_role=role
        )
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
            role=role,
            token_a_hash=our_token_hash,
            legacy_token=False,
            correlation_id=_correlation(),
        )
        theirs = await self.client.post_credentials(
            credentials_url,
            token_a,
            self.our_credentials(our_token),
            version=version,
            partner_role=role,
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
        return await self.write_path.write(
            SLICE,
            pid,
            lambda state: decide_connection(
                state,
                method="POST",
                connection=connection,
                now=_now(),
                source=self.us,
                correlation_id=_correlation(),
            ),
        )

    async def registered(self, partner_id: str) -> PartnerState:
        """A registered partner as the log holds it, else LookupError."""
        state = await self.write_path.state(SLICE, partner_id)
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
        state = await self.registered(partner_id)
        assert state.our_token_encrypted and state.their_token_hash and state.versions_url
        current = self.vault.decrypt(state.our_token_encrypted)
        role = partner_role(state)
        # The highest version we both speak now: the PUT goes to that
        # version's credentials endpoint, and the connection moves to it.
        version, _, found = await discover(
            self.client, state.versions_url, current, offered=self.versions, partner_role=role
        )
        credentials_url = _credentials_url(state.model_copy(update={"endpoints": found}))
        old_token_hash = state.their_token_hash
        await self._update(partner_id, their_token_hash=new_token_hash)
        try:
            theirs = await self.client.put_credentials(
                credentials_url,
                current,
                self.our_credentials(new_token),
                version=version,
                partner_role=role,
            )
            version, versions_url, endpoints = await discover(
                self.client, str(theirs.url), theirs.token, offered=(version,), partner_role=role
            )
        except Exception:
            await self._update(partner_id, their_token_hash=old_token_hash)
            raise
        return await self._update(
            partner_id,
            version=version,
            versions_url=versions_url,
            endpoints=endpoints,
            roles=tuple(theirs.roles),
            our_token_encrypted=self.vault.encrypt(theirs.token),
        )

    async def unregister_with(self, partner_id: str, *, tell_partner: bool = True) -> None:
        """We end the registration (credentials DELETE towards the partner),
        then record it; a partner that cannot be reached stays registered,
        unless ``tell_partner`` is off (a partner that is gone for good)."""
        state = await self.registered(partner_id)
        assert state.our_token_encrypted is not None
        if tell_partner:
            await self.client.delete_credentials(
                _credentials_url(state),
                self.vault.decrypt(state.our_token_encrypted),
                version=state.version or CORE_VERSION,
            )
        await self.write_path.write(
            SLICE,
            partner_id,
            lambda s: decide_unregister(
                s, now=_now(), source=self.us, correlation_id=_correlation()
            ),
        )

    async def _update(self, partner_id: str, **changes: object) -> PartnerState:
        """Record the registered partner's connection again, with ``changes``."""
        return await self.write_path.write(
            SLICE,
            partner_id,
            lambda state: decide_connection(
                state,
                method="PUT",
                connection=connection_of(state).model_copy(update=changes),
                now=_now(),
                source=self.us,
                correlation_id=_correlation(),
            ),
        )


async def partners_in_log(history: LogHistory) -> list[PartnerState]:
    """Every partner as the log holds it, folded from the topic (small: a
    few events per partner), by id: what an operator listing partners right
    after a registration must see, whether or not the view has caught up."""
    states: dict[str, PartnerState | None] = {}
    async for _, _, event in history.scan(SLICE.topic):
        key = event.aggregate_key
        states[key] = SLICE.evolve(states.get(key), event)
    return [state for _, state in sorted(states.items()) if state is not None]


def _credentials_url(state: PartnerState) -> str:
    url = next((str(e.url) for e in state.endpoints if e.identifier == "credentials"), None)
    if url is None:
        raise LookupError(f"partner {state.partner_id} offers no credentials endpoint")
    return url


def partner_role(state: PartnerState | None) -> Role | None:
    """The partner's role when it has one: the role it was invited for, else
    its only role (OCPI 2.1.1 names none, docs/adr/0045)."""
    if state is None:
        return None
    if state.invited_as is not None:
        return state.invited_as
    roles = {r.role for r in state.roles}
    return roles.pop() if len(roles) == 1 else None


def _party_of(credentials: Credentials) -> Party:
    first = credentials.roles[0]
    return Party(country_code=first.country_code.upper(), party_id=first.party_id.upper())
