"""Calling a partner's OCPI API (the partner-client port and its httpx adapter).

Every call carries our token for that partner, base64-encoded
(transport_and_format, Authorization), and fresh ``X-Request-ID`` and
``X-Correlation-ID`` values; nothing of the request that caused the call is
forwarded. Tokens never appear in logs or error messages.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any, Protocol

import httpx
import structlog

from schemas.ocpi.credentials import Credentials
from schemas.ocpi.versions import Version, VersionDetails

log = structlog.get_logger(__name__)


class PartnerCallError(Exception):
    """A partner's API could not be used (OCPI 3001 towards our caller)."""


def authorization(token: str) -> str:
    return "Token " + base64.b64encode(token.encode()).decode()


class PartnerClient(Protocol):
    async def versions(self, url: str, token: str) -> list[Version]: ...

    async def version_details(self, url: str, token: str) -> VersionDetails: ...

    async def post_credentials(self, url: str, token: str, ours: Credentials) -> Credentials: ...


class HttpPartnerClient:
    def __init__(self, timeout_s: float = 10.0) -> None:
        self._timeout_s = timeout_s

    async def _call(
        self, method: str, url: str, token: str, json: dict[str, Any] | None = None
    ) -> Any:
        headers = {
            "Authorization": authorization(token),
            "X-Request-ID": str(uuid.uuid4()),
            "X-Correlation-ID": str(uuid.uuid4()),
        }
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s) as client:
                resp = await client.request(method, url, headers=headers, json=json)
        except httpx.HTTPError as exc:
            raise PartnerCallError(f"{method} {url}: {type(exc).__name__}") from exc
        log.info("partner_call", method=method, url=url, status=resp.status_code)
        try:
            body = resp.json()
        except ValueError as exc:
            raise PartnerCallError(f"{method} {url}: HTTP {resp.status_code}, not JSON") from exc
        code = body.get("status_code") if isinstance(body, dict) else None
        if resp.status_code >= 300 or code != 1000:
            message = body.get("status_message") if isinstance(body, dict) else None
            raise PartnerCallError(
                f"{method} {url}: HTTP {resp.status_code}, OCPI {code}: {message or ''}".strip()
            )
        return body.get("data")

    async def versions(self, url: str, token: str) -> list[Version]:
        data = await self._call("GET", url, token)
        try:
            return [Version.model_validate(v) for v in data]
        except (TypeError, ValueError) as exc:
            raise PartnerCallError(f"GET {url}: not a list of versions") from exc

    async def version_details(self, url: str, token: str) -> VersionDetails:
        data = await self._call("GET", url, token)
        try:
            return VersionDetails.model_validate(data)
        except ValueError as exc:
            raise PartnerCallError(f"GET {url}: not version details") from exc

    async def post_credentials(self, url: str, token: str, ours: Credentials) -> Credentials:
        data = await self._call("POST", url, token, ours.model_dump(mode="json"))
        try:
            return Credentials.model_validate(data)
        except ValueError as exc:
            raise PartnerCallError(f"POST {url}: not a credentials object") from exc
