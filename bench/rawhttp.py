"""A lean HTTP/1.1 client for the load phases of the benchmarks.

The load generator runs on the same cores as the platform it measures, so
what it spends per request is taken from the platform. httpx spent 0.54-0.57
ms of CPU per request here, this client 0.05-0.06 (bench/README.md): at 500
requests a second, a quarter of a core against a fortieth. A request of the load is
always the same shape: one keep-alive connection, a method, a path, a
small body and the same headers, and an answer with a ``Content-Length``
(uvicorn sets it on every non-streamed answer). ``RawConnection`` writes
such a request as one prepared byte string and reads the answer with
asyncio's stream reader; nothing else is supported, and an answer it
cannot read (chunked, no length, a closed connection) is a ``RawHttpError``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson


class RawHttpError(Exception):
    """The connection failed, or the answer is not one this client reads."""


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int
    content: bytes

    def ocpi_status_code(self) -> int | None:
        """The OCPI envelope's ``status_code``; None when there is none."""
        try:
            code = orjson.loads(self.content).get("status_code")
        except (orjson.JSONDecodeError, AttributeError):
            return None
        return code if isinstance(code, int) else None


class RawConnection:
    """One keep-alive HTTP/1.1 connection to ``base_url`` (``http://`` only),
    every request carrying ``headers``. Opened on first use (or by
    ``open``), reopened after a failure; one request at a time."""

    def __init__(self, base_url: str, headers: Mapping[str, str], timeout_s: float) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or url.hostname is None:
            raise ValueError(f"an http:// URL with a host is needed, not {base_url!r}")
        self._host = url.hostname
        self._port = url.port or 80
        fixed = {"Host": f"{self._host}:{self._port}", **headers}
        self._head = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode("latin-1")
        self._timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)

    async def request(self, method: str, path: str, body: bytes = b"") -> Answer:
        try:
            return await asyncio.wait_for(self._exchange(method, path, body), self._timeout_s)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            await self.aclose()
            raise RawHttpError(f"{type(exc).__name__}: {exc}") from exc
        except RawHttpError:
            await self.aclose()
            raise

    async def _exchange(self, method: str, path: str, body: bytes) -> Answer:
        await self.open()
        assert self._reader is not None and self._writer is not None
        self._writer.write(
            b"%s %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s"
            % (method.encode(), path.encode(), self._head, len(body), body)
        )
        status_line = await self._reader.readline()
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise RawHttpError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
        status = int(parts[1])
        length: int | None = None
        close = False
        while (line := await self._reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise RawHttpError(f"a {value.strip().decode()} answer is not read here")
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length is None:
            raise RawHttpError("an answer without Content-Length")
        content = await self._reader.readexactly(length)
        if close:
            await self.aclose()
        return Answer(status, content)

    async def aclose(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
