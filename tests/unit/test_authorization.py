"""Authorizing a token presented at our chargers (we as CPO): the whitelist
rule table, the offline fallback, and the service on the in-memory write
path (the tokens' states) with fakes of its other ports (who holds a uid,
partners, real-time call, cache)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from producers import tokens
from producers.authorization import (
    AuthorizationService,
    AuthorizeRequest,
    Decision,
    DecisionSource,
    InMemoryDecisionCache,
    RealTimeAnswer,
    offline_decision,
    whitelist_decision,
)
from producers.decision_store import InMemoryDecisionStore
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.partners import PartnerState
from producers.tokens import TokenState
from producers.write_path import WritePath
from schemas.events import Party, TokenAuthorizationDecided
from schemas.events.tokens import token_key
from schemas.ocpi.credentials import BusinessDetails, CredentialsRole, Role
from schemas.ocpi.tokens import AllowedType, AuthorizationInfo, LocationReferences, Token
from schemas.ocpi.types import TokenType
from schemas.ocpi.versions import Endpoint, InterfaceRole
from tests.token_objects import token

US = Party(country_code="ZZ", party_id="HUB")
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LOC = LocationReferences(location_id="LOC1", evse_uids=["E1"])


def _state(valid: bool = True, whitelist: str = "NEVER", **kw: Any) -> TokenState:
    return TokenState(token=token(valid=valid, whitelist=whitelist, **kw))


# --- the rule tables -----------------------------------------------------------


@pytest.mark.parametrize(
    ("whitelist", "valid", "expected"),
    [
        ("ALWAYS", True, (True, AllowedType.ALLOWED)),
        ("ALWAYS", False, (False, AllowedType.BLOCKED)),
        ("ALLOWED", True, (True, AllowedType.ALLOWED)),
        ("ALLOWED", False, None),  # its state may have changed: ask
        ("ALLOWED_OFFLINE", True, None),
        ("ALLOWED_OFFLINE", False, None),
        ("NEVER", True, None),
        ("NEVER", False, None),
    ],
)
def test_whitelist_decision(
    whitelist: str, valid: bool, expected: tuple[bool, AllowedType] | None
) -> None:
    decided = whitelist_decision(_state(valid, whitelist))
    if expected is None:
        assert decided is None
    else:
        assert decided is not None
        assert (decided.authorized, decided.allowed) == expected
        assert decided.source is DecisionSource.WHITELIST


@pytest.mark.parametrize(
    ("whitelist", "valid", "authorized", "allowed"),
    [
        ("ALLOWED_OFFLINE", True, True, AllowedType.ALLOWED),
        ("ALLOWED_OFFLINE", False, False, AllowedType.BLOCKED),
        ("ALLOWED", False, False, AllowedType.BLOCKED),
        ("NEVER", True, False, None),
        ("NEVER", False, False, AllowedType.BLOCKED),
    ],
)
def test_offline_decision(
    whitelist: str, valid: bool, authorized: bool, allowed: AllowedType | None
) -> None:
    decided = offline_decision(_state(valid, whitelist))
    assert (decided.authorized, decided.allowed) == (authorized, allowed)
    assert decided.source is DecisionSource.OFFLINE


def test_offline_without_a_whitelisted_token_refuses() -> None:
    assert offline_decision(None).authorized is False


# --- the service with fakes ------------------------------------------------------


@dataclass
class FakeDirectory:
    """Who holds a uid, as the tokens view would list them."""

    keys: list[str] = field(default_factory=list)

    async def holders(
        self, uid: str, token_type: str, *, exclude_party: tuple[str, str] | None = None
    ) -> list[str]:
        return [
            k
            for k in self.keys
            if k.split("/")[2:] == [uid.upper(), token_type]
            and tuple(k.split("/")[:2]) != exclude_party
        ]


def _key(state: TokenState) -> str:
    t = state.token
    assert t is not None
    return token_key(t["country_code"], t["party_id"], t["uid"], t["type"])


@dataclass
class FakePartners:
    partners: list[PartnerState]

    async def all(self) -> list[PartnerState]:
        return self.partners


class Vault:
    def decrypt(self, sealed: str) -> str:
        return sealed.removeprefix("sealed:")


@dataclass
class FakeRealTime:
    answers: dict[str, RealTimeAnswer]
    calls: list[dict[str, Any]] = field(default_factory=list)

    async def authorize(
        self,
        url: str,
        *,
        token: str,
        headers: dict[str, str],
        location: LocationReferences | None,
        edge: Any = None,
        presented: dict[str, Any] | None = None,
    ) -> RealTimeAnswer:
        self.calls.append(
            {
                "url": url,
                "token": token,
                "headers": headers,
                "location": location,
                "edge": edge,
                "presented": presented,
            }
        )
        return self.answers.get(url.split("/tokens")[0], RealTimeAnswer("unreachable"))


def _emsp(partner_id: str, cc: str, pid: str, base: str) -> PartnerState:
    return PartnerState(
        partner_id=partner_id,
        status="registered",
        our_token_encrypted=f"sealed:token-for-{partner_id}",
        roles=(
            CredentialsRole(
                role=Role.EMSP,
                business_details=BusinessDetails(name=partner_id),
                country_code=cc,
                party_id=pid,
            ),
        ),
        endpoints=(
            Endpoint.model_validate(
                {"identifier": "tokens", "role": InterfaceRole.SENDER, "url": f"{base}/tokens"}
            ),
        ),
    )


PEER = "http://peer.test"
OTHER = "http://other.test"


def _answer(allowed: AllowedType, **kw: Any) -> RealTimeAnswer:
    info = AuthorizationInfo(
        allowed=allowed,
        token=Token.model_validate(token(whitelist="NEVER", **kw)),
        location=LOC if allowed is AllowedType.ALLOWED else None,
        authorization_reference="REF-42",
    )
    return RealTimeAnswer("decided", info=info)


def _service(
    held: list[TokenState],
    answers: dict[str, RealTimeAnswer],
    log: InMemoryEventLog | None = None,
) -> tuple[AuthorizationService, FakeRealTime, InMemoryDecisionCache]:
    """The service with ``held`` in the Tokens slice; ``log`` receives the
    decisions on our own tokens."""
    log = log or InMemoryEventLog()
    store = InMemoryDecisionStore()
    for state in held:
        store.seed(tokens.SLICE, _key(state), state)
    realtime = FakeRealTime(answers)
    cache = InMemoryDecisionCache()
    service = AuthorizationService(
        write_path=WritePath(log, store, InMemoryLogHistory(log)),
        directory=FakeDirectory([_key(state) for state in held]),
        partners=FakePartners(
            [_emsp("abd", "NL", "ABD", PEER), _emsp("other", "BE", "OTH", OTHER)]
        ),
        realtime=realtime,
        cache=cache,
        vault=Vault(),
        us=US,
        cache_ttl_s=30,
    )
    return service, realtime, cache


REQUEST = AuthorizeRequest(uid="04A1B2C3", type=TokenType.RFID, location=LOC)


async def test_an_always_token_is_decided_by_the_whitelist_without_a_call() -> None:
    service, realtime, _ = _service([_state(whitelist="ALWAYS")], {})
    decided = await service.authorize(REQUEST, "corr", now=NOW)
    assert (decided.authorized, decided.source) == (True, DecisionSource.WHITELIST)
    assert realtime.calls == []


async def test_a_never_token_asks_its_owner_in_real_time_then_uses_the_cache() -> None:
    service, realtime, _ = _service([_state()], {PEER: _answer(AllowedType.ALLOWED)})
    decided = await service.authorize(REQUEST, "corr-7", now=NOW)
    assert decided.source is DecisionSource.REAL_TIME
    assert (decided.authorized, decided.authorization_reference) == (True, "REF-42")
    [call] = realtime.calls
    assert call["url"] == f"{PEER}/tokens/04A1B2C3/authorize?type=RFID"
    assert call["token"] == "token-for-abd"  # unsealed only for the call
    h = call["headers"]
    assert h["X-Correlation-ID"] == "corr-7" and h["X-Request-ID"]
    assert (h["OCPI-from-country-code"], h["OCPI-from-party-id"]) == ("ZZ", "HUB")
    assert (h["OCPI-to-country-code"], h["OCPI-to-party-id"]) == ("NL", "ABD")
    assert call["location"] == LOC

    again = await service.authorize(REQUEST, "corr-8", now=NOW)
    assert again.source is DecisionSource.CACHE
    assert again.authorization_reference == "REF-42"
    assert len(realtime.calls) == 1
    # Another EVSE is another question.
    elsewhere = AuthorizeRequest(
        uid="04A1B2C3", type=TokenType.RFID, location=LocationReferences(location_id="LOC2")
    )
    await service.authorize(elsewhere, "corr-9", now=NOW)
    assert len(realtime.calls) == 2


async def test_a_blocked_answer_is_relayed() -> None:
    service, _, _ = _service([_state()], {PEER: _answer(AllowedType.BLOCKED, valid=False)})
    decided = await service.authorize(REQUEST, "corr", now=NOW)
    assert (decided.authorized, decided.allowed) == (False, AllowedType.BLOCKED)


@pytest.mark.parametrize(("whitelist", "authorized"), [("ALLOWED_OFFLINE", True), ("NEVER", False)])
async def test_an_unreachable_emsp_leaves_it_to_the_whitelist_type(
    whitelist: str, authorized: bool
) -> None:
    service, realtime, cache = _service([_state(whitelist=whitelist)], {})
    decided = await service.authorize(REQUEST, "corr", now=NOW)
    assert (decided.authorized, decided.source) == (authorized, DecisionSource.OFFLINE)
    assert len(realtime.calls) == 1
    assert cache.held == {}  # an offline fallback is not cached


async def test_an_unknown_token_asks_every_emsp_until_one_knows_it() -> None:
    service, realtime, _ = _service(
        [],
        {
            PEER: RealTimeAnswer("unknown"),
            OTHER: _answer(AllowedType.ALLOWED, country_code="BE", party_id="OTH"),
        },
    )
    decided = await service.authorize(REQUEST, "corr", now=NOW)
    assert (decided.authorized, decided.partner_id) == (True, "other")
    assert [c["url"].split("/tokens")[0] for c in realtime.calls] == [PEER, OTHER]
    assert realtime.calls[1]["token"] == "token-for-other"


async def test_a_token_nobody_knows_is_refused_as_unknown() -> None:
    unknown = RealTimeAnswer("unknown")
    service, _, _ = _service([], {PEER: unknown, OTHER: unknown})
    decided = await service.authorize(REQUEST, "corr", now=NOW)
    assert decided == Decision(authorized=False, allowed=None, source=DecisionSource.UNKNOWN)


async def test_a_named_owner_is_the_only_one_asked() -> None:
    service, realtime, _ = _service([], {OTHER: _answer(AllowedType.ALLOWED)})
    named = AuthorizeRequest(
        uid="04A1B2C3", type=TokenType.RFID, location=LOC, country_code="BE", party_id="OTH"
    )
    await service.authorize(named, "corr", now=NOW)
    assert [c["url"].split("/tokens")[0] for c in realtime.calls] == [OTHER]


async def test_our_own_token_at_our_charger_is_decided_by_our_rule_and_recorded() -> None:
    ours = _state(whitelist="NEVER", country_code="ZZ", party_id="HUB", valid=False)
    log = InMemoryEventLog()
    service, realtime, cache = _service([ours], {}, log)
    decided = await service.authorize(REQUEST, "corr-own", now=NOW)
    assert (decided.source, decided.authorized, decided.allowed) == (
        DecisionSource.OWN,
        False,
        AllowedType.BLOCKED,
    )
    assert realtime.calls == [] and cache.held == {}
    [event] = log.events
    assert isinstance(event, TokenAuthorizationDecided)
    assert event.aggregate_key == "ZZ/HUB/04A1B2C3/RFID"
    assert event.payload.authorization_reference == decided.authorization_reference
    assert event.correlation_id == "corr-own"


async def test_a_cache_hit_needs_no_whitelist_lookup() -> None:
    service, realtime, _ = _service([_state()], {PEER: _answer(AllowedType.ALLOWED)})
    await service.authorize(REQUEST, "corr-1", now=NOW)
    # Any lookup of the token would fail now.
    service._directory = None  # type: ignore[assignment]
    service._write_path = None  # type: ignore[assignment]
    again = await service.authorize(REQUEST, "corr-2", now=NOW)
    assert again.source is DecisionSource.CACHE
    assert len(realtime.calls) == 1


async def test_of_several_partners_holding_the_uid_the_newest_token_decides() -> None:
    older = _state(whitelist="ALWAYS", valid=False, party_id="OLD", at="2026-01-01T00:00:00Z")
    newer = _state(whitelist="ALWAYS", valid=True, party_id="NEW", at="2026-02-01T00:00:00Z")
    service, realtime, _ = _service([older, newer], {})
    decided = await service.authorize(REQUEST, "corr", now=NOW)
    assert (decided.authorized, decided.source) == (True, DecisionSource.WHITELIST)
    assert decided.token is not None and decided.token["party_id"] == "NEW"
    assert realtime.calls == []


async def test_a_named_owner_is_looked_up_without_the_directory() -> None:
    service, _, _ = _service([_state(whitelist="ALWAYS")], {})
    service._directory = None  # type: ignore[assignment]  # any listing would fail now
    named = AuthorizeRequest(
        uid="04a1b2c3", type=TokenType.RFID, location=LOC, country_code="nl", party_id="abd"
    )
    decided = await service.authorize(named, "corr", now=NOW)
    assert (decided.authorized, decided.source) == (True, DecisionSource.WHITELIST)


# --- a 2.1.1 eMSP (docs/adr/0045): its URL, token, headers and answer shape ------------


async def test_a_211_emsp_is_asked_in_its_version() -> None:
    held = _state()
    service, realtime, _ = _service([held], {PEER: _answer(AllowedType.ALLOWED)})
    service._partners = FakePartners(  # type: ignore[attr-defined]
        [_emsp("abd", "NL", "ABD", PEER).model_copy(update={"version": "2.1.1"})]
    )
    decided = await service.authorize(REQUEST, "corr-211", now=NOW)
    assert decided.source is DecisionSource.REAL_TIME
    [call] = realtime.calls
    # 2.1.1: the uid alone in the URL, no routing headers, its adapter.
    assert call["url"] == f"{PEER}/tokens/04A1B2C3/authorize"
    assert not [h for h in call["headers"] if h.startswith("OCPI-")]
    assert call["edge"].version == "2.1.1"
    # Its answer names no token: the copy it pushed us completes it.
    assert call["presented"] == held.token


def test_a_211_authorization_info_reads_as_ours_with_the_presented_token() -> None:
    from schemas.ocpi.adapters import wire
    from schemas.ocpi.wire import EdgeContext, Kind

    presented = token(whitelist="NEVER")
    answer = {
        "allowed": "ALLOWED",
        "location": {"location_id": "LOC1", "evse_uids": ["E1"], "connector_ids": ["1"]},
        "info": {"language": "en", "text": "welcome"},
    }
    ours = wire("2.1.1").object_in(
        Kind.AUTHORIZATION,
        answer,
        owner=None,
        patch=False,
        now=NOW,
        context=EdgeContext(token=presented),
    )
    info = AuthorizationInfo.model_validate(ours)
    assert info.allowed is AllowedType.ALLOWED and info.token.uid == presented["uid"]
    assert info.authorization_reference is None  # 2.1.1 has none
    # Without the token it is not an AuthorizationInfo of ours (the client
    # then counts the eMSP unreachable rather than guess).
    bare = wire("2.1.1").object_in(Kind.AUTHORIZATION, answer, owner=None, patch=False, now=NOW)
    with pytest.raises(ValueError, match="token"):
        AuthorizationInfo.model_validate(bare)
