"""Tariffs and CDRs through the one write path on the real Kafka and Redis:
a tariff's state rebuilt from the topic into an empty decision store keeps
every digit; two API processes crediting one CDR at once credit it once; a
partner's CDR is judged against the token and tariff states as of the log."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from producers import cdrs, tariffs, tokens
from producers.decision_store import RedisDecisionStore
from producers.log import InMemoryEventLog, KafkaLogHistory
from producers.write_path import Decision, Origin, RefusedError, WritePath, partition_for
from schemas.events import CdrIssued, CdrReceived, CdrReconciled, Party, TokenPut, new_event_id
from schemas.events.cdrs import cdr_key
from schemas.events.tariffs import TariffRef
from schemas.events.tokens import TokenPutPayload, TokenRef
from schemas.ocpi.cdrs import Cdr
from schemas.ocpi.tariffs import loads_exact
from schemas.ocpi.tokens import TokenType
from schemas.topics import CDRS
from tests.cdr_objects import simple_tariff
from tests.integration.test_write_path import api_process
from tests.services import Namespace
from tests.tariff_objects import tariff_json
from tests.unit.test_cdr_api import OUR_TOKEN, partner_cdr
from tests.unit.test_cdrs import our_cdr

T0 = datetime(2026, 6, 2, 9, tzinfo=UTC)
US = Party(country_code="ZZ", party_id="HUB")
ALL = (tariffs.SLICE, cdrs.SLICE, tokens.SLICE)


@asynccontextmanager
async def money_process(namespace: Namespace) -> AsyncIterator[WritePath]:
    """One API process (its own producer, Redis client and path) with the
    states of the slices money is decided on."""
    async with api_process(namespace) as path:
        await path.ensure_ready(ALL)
        yield path


def _tariff_ref(tariff_id: str, country_code: str = "NL", party_id: str = "ABC") -> TariffRef:
    return TariffRef(country_code=country_code, party_id=party_id, tariff_id=tariff_id)


async def _put_tariff(path: WritePath, ref: TariffRef, body: Any) -> bool:
    command = tariffs.PutTariff(ref, body, Origin(tariffs.owner_of(ref), "c"))
    return await path.write(
        tariffs.SLICE, ref.tariff_key, lambda state: tariffs.decide(state, command, T0)
    )


async def test_a_tariff_rebuilt_from_the_topic_keeps_every_digit(namespace: Namespace) -> None:
    tid = f"T{uuid.uuid4().hex[:8]}"
    ref = _tariff_ref(tid)
    # A double's 17-digit shortest form and an exponent: both travel through
    # Kafka as JSON numbers, and come back as the same Decimals.
    text = (
        tariff_json(tid)
        .replace("0.3175", "0.30000000000000004")
        .replace("0.123456789012345", "1e-7")
    )
    async with money_process(namespace) as first:
        assert await _put_tariff(first, ref, loads_exact(text)) is True
        held = await first.state(tariffs.SLICE, ref.tariff_key)
    # A new, empty decision store (a key space of its own) rebuilt from the topic.
    s = namespace.settings
    fresh = f"{s.topic_prefix}{tid}-"
    client = aioredis.Redis.from_url(s.redis_url)
    try:
        restarted = WritePath(
            InMemoryEventLog(),
            RedisDecisionStore(client, fresh),
            KafkaLogHistory(s.kafka_bootstrap, s.topic_prefix),
        )
        await restarted.ensure_ready([tariffs.SLICE])
        rebuilt = await restarted.state(tariffs.SLICE, ref.tariff_key)
        await client.delete(*[k async for k in client.scan_iter(match=f"{fresh}*")])
    finally:
        await client.aclose()
    assert held is not None and rebuilt == held
    assert rebuilt.tariff is not None
    prices = [e["price_components"][0]["price"] for e in rebuilt.tariff["elements"]]
    assert prices[1:3] == [Decimal("0.30000000000000004"), Decimal("1E-7")]
    assert all(isinstance(p, Decimal) for p in prices[1:3])


async def test_two_processes_crediting_one_cdr_credit_it_once(namespace: Namespace) -> None:
    cdr_id = f"OS-{uuid.uuid4().hex[:8]}"
    original = {**our_cdr(), "id": cdr_id, "session_id": cdr_id}
    command = cdrs.CreditCdr(cdr_id, original, US, Origin(US, "c"))
    key = cdrs.credit_key(US, cdr_id)

    async def credit(path: WritePath) -> Any:
        return await path.write(
            cdrs.SLICE, key, lambda state: cdrs.decide_credit(state, command, T0)
        )

    async with money_process(namespace) as first, money_process(namespace) as second:
        results = await asyncio.gather(
            *(credit(p) for p in (first, second, first, second)), return_exceptions=True
        )
    credited = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, RefusedError)]
    assert len(credited) == 1 and len(refused) == 3, results
    assert credited[0]["credit_reference_id"] == cdr_id
    history = KafkaLogHistory(namespace.settings.kafka_bootstrap, namespace.settings.topic_prefix)
    partition = partition_for(key, CDRS.partitions)
    found = await history.events_of(CDRS, partition, key, since_ms=0, after=None)
    assert [type(e) for _, e in found] == [CdrIssued]


async def _issue_token(path: WritePath, token: dict[str, Any]) -> None:
    """Record the PUT of one of our tokens, as the Tokens slice would."""
    ref = TokenRef(
        country_code=token["country_code"],
        party_id=token["party_id"],
        uid=token["uid"],
        type=TokenType(token["type"]),
    )
    body = {
        **token,
        "issuer": "Hub",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2026-05-01T00:00:00Z",
    }
    event = TokenPut(
        event_id=new_event_id(),
        aggregate_key=ref.key,
        occurred_at=T0,
        recorded_at=T0,
        source=US,
        correlation_id="c",
        payload=TokenPutPayload(**ref.model_dump(), token=body, last_updated=T0),
    )
    await path.write(tokens.SLICE, ref.key, lambda _: Decision([event], None))


async def test_a_received_cdr_is_judged_on_the_states_the_log_holds(
    namespace: Namespace,
) -> None:
    cdr_id = f"P-{uuid.uuid4().hex[:8]}"
    token = {**OUR_TOKEN, "uid": f"RFID-{uuid.uuid4().hex[:6]}"}
    cdr = Cdr.model_validate({**partner_cdr(cdr_token=token), "id": cdr_id})
    key = cdr_key("NL", "CPO", cdr_id)
    async with money_process(namespace) as path:
        await _issue_token(path, token)
        tariff = simple_tariff(country_code="NL", party_id="CPO")
        await _put_tariff(path, _tariff_ref("CDR-T1", "NL", "CPO"), tariff)
        held: tariffs.TariffState | None = await path.state(tariffs.SLICE, "NL/CPO/CDR-T1")
        ours: tokens.TokenState | None = await path.state(
            tokens.SLICE, f"ZZ/HUB/{token['uid'].upper()}/RFID"
        )
        command = cdrs.ReceiveCdr(
            cdr=cdr,
            poster_owns=lambda cc, pid: True,
            us=US,
            token_issued=ours is not None and ours.token is not None,
            tariffs={"CDR-T1": tariffs.held(held)},
            time_zone=None,
            tolerance=Decimal("0.01"),
            origin=Origin(Party(country_code="NL", party_id="CPO"), "c"),
        )
        await path.write(cdrs.SLICE, key, lambda state: cdrs.decide_receive(state, command, T0))
        with pytest.raises(RefusedError, match="received before"):
            await path.write(cdrs.SLICE, key, lambda state: cdrs.decide_receive(state, command, T0))
        state = await path.state(cdrs.SLICE, key)
    assert state == cdrs.CdrState(role="received", reconciled=True)
    history = KafkaLogHistory(namespace.settings.kafka_bootstrap, namespace.settings.topic_prefix)
    partition = partition_for(key, CDRS.partitions)
    found = [e for _, e in await history.events_of(CDRS, partition, key, since_ms=0, after=None)]
    assert [type(e) for e in found] == [CdrReceived, CdrReconciled]
    reconciled = found[1]
    assert isinstance(reconciled, CdrReconciled)
    assert reconciled.payload.tariff_source == "held" and reconciled.payload.difference == 0
