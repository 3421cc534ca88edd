"""The benchmarks' lean load client (bench/rawhttp.py) against a loopback
server that answers what it is told to: what it sends, what it reads, and
what it refuses to read."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from bench.rawhttp import RawConnection, RawHttpError

Answerer = Callable[[bytes], bytes]


@asynccontextmanager
async def server(answer: Answerer) -> AsyncIterator[tuple[str, list[bytes], list[int]]]:
    """A server that reads each request whole and writes ``answer(request)``;
    yields its URL, the requests it read and how many connections it took."""
    requests: list[bytes] = []
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        # A client that closed its connection ends the exchange.
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                request = head + await reader.readexactly(length)
                requests.append(request)
                writer.write(answer(request))
                await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    async with srv:
        yield f"http://127.0.0.1:{port}", requests, connections


def ok(body: bytes, *extra: bytes) -> bytes:
    head = [b"HTTP/1.1 200 OK", b"content-type: application/json", *extra]
    return b"\r\n".join([*head, b"content-length: %d" % len(body), b"", body])


async def test_requests_go_out_whole_on_one_kept_connection() -> None:
    body = b'{"status_code":1000,"data":null}'
    async with server(lambda _: ok(body)) as (url, requests, connections):
        conn = RawConnection(url, {"Authorization": "Token abc"}, timeout_s=5)
        first = await conn.request("PATCH", "/ocpi/x/1", b'{"status":"CHARGING"}')
        second = await conn.request("GET", "/healthz")
        await conn.aclose()
    assert (first.status_code, first.content, first.ocpi_status_code()) == (200, body, 1000)
    assert second.ocpi_status_code() == 1000
    assert len(connections) == 1
    head, _, sent = requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"PATCH /ocpi/x/1 HTTP/1.1"
    assert b"Authorization: Token abc" in lines
    assert f"Host: {url.removeprefix('http://')}".encode() in lines
    assert b"Content-Length: 21" in lines
    assert sent == b'{"status":"CHARGING"}'
    assert requests[1].startswith(b"GET /healthz HTTP/1.1\r\n")


async def test_an_answer_that_closes_the_connection_is_read_and_the_next_reopens() -> None:
    async with server(lambda _: ok(b"{}", b"connection: close")) as (url, _, connections):
        conn = RawConnection(url, {}, timeout_s=5)
        first = await conn.request("GET", "/a")
        second = await conn.request("GET", "/b")
        await conn.aclose()
    assert first.status_code == second.status_code == 200
    assert first.ocpi_status_code() is None  # no envelope
    assert len(connections) == 2


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", "chunked"),
        (b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n", "without Content-Length"),
        (b"SSH-2.0-OpenSSH\r\n", "not an HTTP/1.x status line"),
    ],
)
async def test_an_answer_it_cannot_read_is_an_error_and_the_connection_is_dropped(
    answer: bytes, says: str
) -> None:
    async with server(lambda _: answer) as (url, _, connections):
        conn = RawConnection(url, {}, timeout_s=5)
        with pytest.raises(RawHttpError, match=says):
            await conn.request("GET", "/")
        with pytest.raises(RawHttpError):
            await conn.request("GET", "/")
    assert len(connections) == 2  # the failed connection was not reused


async def test_a_server_that_never_answers_is_a_timeout() -> None:
    async with server(lambda _: b"") as (url, _, _):
        conn = RawConnection(url, {}, timeout_s=0.2)
        with pytest.raises(RawHttpError, match="TimeoutError"):
            await conn.request("GET", "/")


def test_only_plain_http_urls_are_taken() -> None:
    with pytest.raises(ValueError, match="http://"):
        RawConnection("https://example.org", {}, timeout_s=1)
