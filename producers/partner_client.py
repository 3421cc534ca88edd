"""Calling a partner's OCPI API (the partner-client port and its httpx adapter).

Every call carries our token for that partner, base64-encoded
(transport_and_format, Authorization) or, to a partner of a version whose
tokens go as they are (OCPI 2.1.1), un-encoded; and fresh ``X-Request-ID`` and
``X-Correlation-ID`` values; nothing of the request that caused the call is
forwarded. Pushes to a partner's Receiver interface (``send_module_request``)
are the exception: they carry the correlation id of the event they deliver, so
a change can be followed from our API to the partner. Tokens never appear in
logs or error messages.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import structlog

from producers.url_policy import UrlRefusedError, check_url, partner_http, refusal_of
from schemas.ocpi.adapters import wire
from schemas.ocpi.credentials import Credentials, Role
from schemas.ocpi.versions import Version, VersionDetails
from schemas.ocpi.wire import CORE_VERSION

log = structlog.get_logger(__name__)


class PartnerCallError(Exception):
    """A partner's API could not be used (OCPI 3001 towards our caller)."""


class TokenRefusedError(PartnerCallError):
    """The partner answered HTTP 401 (it did not know the token as sent)."""


def authorization(token: str, *, raw: bool = False) -> str:
    """The Authorization header: the token base64-encoded (OCPI 2.2 and
    later) or, with ``raw``, as it is (OCPI 2.1.1)."""
    return "Token " + (token if raw else base64.b64encode(token.encode()).decode())


class PartnerClient(Protocol):
    """``version``: the OCPI version of the call (its token encoding and
    object shapes); ``partner_role``: the partner's role, for versions whose
    objects name none (2.1.1)."""

    async def versions(self, url: str, token: str) -> list[Version]: ...

    async def version_details(
        self, url: str, token: str, *, version: str = ..., partner_role: Role | None = ...
    ) -> VersionDetails: ...

    async def post_credentials(
        self,
        url: str,
        token: str,
        ours: Credentials,
        *,
        version: str = ...,
        partner_role: Role | None = ...,
    ) -> Credentials: ...

    async def put_credentials(
        self,
        url: str,
        token: str,
        ours: Credentials,
        *,
        version: str = ...,
        partner_role: Role | None = ...,
    ) -> Credentials: ...

    async def delete_credentials(self, url: str, token: str, *, version: str = ...) -> None: ...


class HttpPartnerClient:
    """Calls only the URLs ``producers.url_policy`` allows: the versions URL
    and credentials URL before each call (a clear refusal), every endpoint of
    the version details as they arrive (a registration with one forbidden
    endpoint fails), each connection resolved, checked and pinned
    (``partner_http``), and never follows a redirect."""

    def __init__(self, timeout_s: float = 10.0, *, allow_private_urls: bool = False) -> None:
        self._timeout_s = timeout_s
        self._allow_private = allow_private_urls

    async def _allowed(self, url: str, what: str) -> None:
        try:
            await check_url(url, allow_private=self._allow_private, what=what)
        except UrlRefusedError as exc:
            raise PartnerCallError(str(exc)) from exc

    async def _call(
        self,
        method: str,
        url: str,
        token: str,
        json: dict[str, Any] | None = None,
        *,
        raw: bool = False,
    ) -> Any:
        await self._allowed(url, "the partner's URL")
        headers = {
            "Authorization": authorization(token, raw=raw),
            "X-Request-ID": str(uuid.uuid4()),
            "X-Correlation-ID": str(uuid.uuid4()),
        }
        try:
            async with partner_http(self._timeout_s, allow_private=self._allow_private) as client:
                resp = await client.request(method, url, headers=headers, json=json)
        except httpx.HTTPError as exc:
            reason = refusal_of(exc) or type(exc).__name__
            raise PartnerCallError(f"{method} {url}: {reason}") from exc
        log.info("partner_call", method=method, url=url, status=resp.status_code)
        try:
            body = resp.json()
        except ValueError as exc:
            raise PartnerCallError(f"{method} {url}: HTTP {resp.status_code}, not JSON") from exc
        code = body.get("status_code") if isinstance(body, dict) else None
        if resp.status_code >= 300 or code != 1000:
            message = body.get("status_message") if isinstance(body, dict) else None
            refused = TokenRefusedError if resp.status_code == 401 else PartnerCallError
            raise refused(
                f"{method} {url}: HTTP {resp.status_code}, OCPI {code}: {message or ''}".strip()
            )
        return body.get("data")

    async def versions(self, url: str, token: str) -> list[Version]:
        """The partner's versions. Its version is not known yet, so neither
        is how it reads tokens: base64 first (2.2 and later), then as is (a
        2.1.1-only partner answers the encoded token 401)."""
        try:
            data = await self._call("GET", url, token)
        except TokenRefusedError:
            data = await self._call("GET", url, token, raw=True)
        try:
            return [Version.model_validate(v) for v in data]
        except (TypeError, ValueError) as exc:
            raise PartnerCallError(f"GET {url}: not a list of versions") from exc

    async def version_details(
        self,
        url: str,
        token: str,
        *,
        version: str = CORE_VERSION,
        partner_role: Role | None = None,
    ) -> VersionDetails:
        edge = wire(version)
        data = await self._call("GET", url, token, raw=edge.raw_token)
        try:
            details = edge.details_in(data, partner_role)
        except ValueError as exc:
            raise PartnerCallError(f"GET {url}: not OCPI {version} version details") from exc
        for endpoint in details.endpoints:
            await self._allowed(str(endpoint.url), f"the {endpoint.identifier} endpoint")
        return details

    async def post_credentials(
        self,
        url: str,
        token: str,
        ours: Credentials,
        *,
        version: str = CORE_VERSION,
        partner_role: Role | None = None,
    ) -> Credentials:
        return await self._send_credentials("POST", url, token, ours, version, partner_role)

    async def put_credentials(
        self,
        url: str,
        token: str,
        ours: Credentials,
        *,
        version: str = CORE_VERSION,
        partner_role: Role | None = None,
    ) -> Credentials:
        return await self._send_credentials("PUT", url, token, ours, version, partner_role)

    async def delete_credentials(
        self, url: str, token: str, *, version: str = CORE_VERSION
    ) -> None:
        await self._call("DELETE", url, token, raw=wire(version).raw_token)

    async def _send_credentials(
        self,
        method: str,
        url: str,
        token: str,
        ours: Credentials,
        version: str,
        partner_role: Role | None,
    ) -> Credentials:
        edge = wire(version)
        data = await self._call(method, url, token, edge.credentials_out(ours), raw=edge.raw_token)
        try:
            return edge.credentials_in(data, partner_role)
        except ValueError as exc:
            raise PartnerCallError(
                f"{method} {url}: not an OCPI {version} credentials object"
            ) from exc


# --- functional-module requests (push to a partner's Receiver interface) ---


@dataclass(frozen=True)
class ModuleAnswer:
    """What a partner answered to one functional-module request.

    ``http_status`` is None when no HTTP answer came (connection refused,
    timeout); ``ocpi_status`` is None when the body was not an OCPI envelope.
    ``error`` names the transport failure (its type only: messages may echo
    headers, and headers carry the token)."""

    http_status: int | None
    ocpi_status: int | None
    error: str | None = None
    # The decoded JSON answer (an envelope when ``ocpi_status`` is set), for
    # callers that read its data (a CommandResponse, producers/sent_commands.py).
    body: Any = None


async def send_module_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    token: str,
    headers: Mapping[str, str],
    json: dict[str, Any] | None,
    raw_token: bool = False,
) -> ModuleAnswer:
    """Send one request to a functional module of a partner and report what came
    back, never raising for what the partner did: the caller decides whether to
    retry. ``headers`` carries the request and correlation ids and the routing
    headers (transport_and_format, "Message Routing"); the Authorization header
    is added here from ``token`` (un-encoded with ``raw_token``: OCPI 2.1.1)."""
    try:
        resp = await client.request(
            method,
            url,
            headers={**headers, "Authorization": authorization(token, raw=raw_token)},
            json=json,
        )
    except httpx.HTTPError as exc:
        # A connection the URL policy refused (partner_http) is named as such.
        refused = refusal_of(exc) is not None
        return ModuleAnswer(
            http_status=None,
            ocpi_status=None,
            error="UrlRefused" if refused else type(exc).__name__,
        )
    try:
        body = resp.json()
    except ValueError:
        body = None
    code = body.get("status_code") if isinstance(body, dict) else None
    return ModuleAnswer(
        http_status=resp.status_code,
        ocpi_status=code if isinstance(code, int) else None,
        body=body,
    )
