"""What the gateway remembers in Redis, so that any gateway process (and the
same one after a restart) finds it: presence of connected charge points,
OCPP transaction ids and their OCPI sessions, remote starts awaiting their
transaction, reservations handed to chargers.

Keys, all under ``{topic_prefix}ocpi-hub:ocpp:`` (docs/adr/0018):

* ``presence:{cp}`` = gateway id, expiring after 3 heartbeat intervals;
* ``seen:{cp}`` = when the charger last said anything (epoch seconds), kept
  30 days: the dashboard's chargers page (api/admin/pages.py);
* ``txid`` a counter (OCPP transactionId, an integer);
* ``tx:{cp}:{txid}`` the transaction (JSON: session id, where, recorded?);
* ``session:{SESSION_ID}`` = ``{cp, txid}`` (RemoteStop finds the transaction);
* ``remote:{cp}:{IDTAG}`` a START_SESSION / RESERVE_NOW token sent to this
  charge point, for 15 minutes (mod_commands: accepted without asking the
  eMSP again) and the StartTransaction that follows a remote start;
* ``reservation:{cp}:{ocpp reservation id}`` the reservation held.
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

# Delete the presence key only while it still names us (another gateway may
# hold the charge point by now).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# mod_commands, StartSession / ReserveNow: a token sent in a command is
# accepted at that charger for 15 minutes without asking the eMSP again.
COMMAND_TOKEN_TTL_S = 15 * 60
# A transaction's mapping outlives any plausible charge.
TRANSACTION_TTL_S = 60 * 24 * 3600
# How long "last heard from" is kept for a charger that went away.
SEEN_TTL_S = 30 * 24 * 3600


class GatewayState:
    def __init__(self, redis: aioredis.Redis, topic_prefix: str) -> None:
        self._redis = redis
        self._p = f"{topic_prefix}ocpi-hub:ocpp:"
        self._release: Any = redis.register_script(_RELEASE)

    def presence_key(self, cp_id: str) -> str:
        return f"{self._p}presence:{cp_id}"

    async def present(self, cp_id: str, gateway_id: str, ttl_s: int, at: float) -> None:
        """Held by ``gateway_id`` for ``ttl_s``, heard from at ``at``: one
        round trip (a pipeline, no transaction: the two are independent)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(self.presence_key(cp_id), gateway_id, ex=ttl_s)
        pipe.set(f"{self._p}seen:{cp_id}", repr(at), ex=SEEN_TTL_S)
        await pipe.execute()

    async def absent(self, cp_id: str, gateway_id: str) -> None:
        await self._release(keys=[self.presence_key(cp_id)], args=[gateway_id])

    async def holder(self, cp_id: str) -> str | None:
        value = await self._redis.get(self.presence_key(cp_id))
        return value.decode() if isinstance(value, bytes) else value

    async def new_transaction_id(self) -> int:
        value: int = await self._redis.incr(f"{self._p}txid")
        return value

    async def _put(self, key: str, value: dict[str, Any], ttl_s: int) -> None:
        await self._redis.set(self._p + key, json.dumps(value), ex=ttl_s)

    async def _get(self, key: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._p + key)
        return None if raw is None else dict(json.loads(raw))

    async def remember_transaction(
        self, cp_id: str, txid: int, transaction: dict[str, Any]
    ) -> None:
        await self._put(f"tx:{cp_id}:{txid}", transaction, TRANSACTION_TTL_S)
        if transaction.get("session_id"):
            key = f"session:{transaction['session_id'].upper()}"
            await self._put(key, {"cp": cp_id, "txid": txid}, TRANSACTION_TTL_S)

    async def transaction(self, cp_id: str, txid: int) -> dict[str, Any] | None:
        return await self._get(f"tx:{cp_id}:{txid}")

    async def transaction_of_session(self, session_id: str) -> dict[str, Any] | None:
        return await self._get(f"session:{session_id.upper()}")

    async def remember_command_token(self, cp_id: str, id_tag: str, entry: dict[str, Any]) -> None:
        await self._put(f"remote:{cp_id}:{id_tag.upper()}", entry, COMMAND_TOKEN_TTL_S)

    async def command_token(self, cp_id: str, id_tag: str) -> dict[str, Any] | None:
        return await self._get(f"remote:{cp_id}:{id_tag.upper()}")

    async def forget_command_token(self, cp_id: str, id_tag: str) -> None:
        await self._redis.delete(f"{self._p}remote:{cp_id}:{id_tag.upper()}")

    async def remember_reservation(
        self, cp_id: str, reservation_id: int, entry: dict[str, Any], ttl_s: int
    ) -> None:
        await self._put(f"reservation:{cp_id}:{reservation_id}", entry, max(ttl_s, 60))

    async def reservation(self, cp_id: str, reservation_id: int) -> dict[str, Any] | None:
        return await self._get(f"reservation:{cp_id}:{reservation_id}")

    async def forget_reservation(self, cp_id: str, reservation_id: int) -> None:
        await self._redis.delete(f"{self._p}reservation:{cp_id}:{reservation_id}")
