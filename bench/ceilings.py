"""What an EVSE status PATCH could cost at best on this machine, measured
with the same load generator as the platform itself (``wrk``, C, so the
generator takes little of the two cores):

* ``fastapi_bare``: a FastAPI app (pydantic 2, uvicorn with uvloop and
  httptools, one worker) that validates the same body and answers an OCPI
  envelope;
* ``fastapi_kafka``: the same app with one acknowledged Kafka write per
  request (aiokafka, acks=all, idempotent, an event-sized record keyed by
  location);
* and the platform's own API, through ``wrk_patches`` with the bench
  partner's token.

The ceiling app is ``bench/ceiling_app.py``; ``ceiling_app()`` serves it
in a subprocess.

This is a measurement, not a test.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

# A Lua script for wrk: PATCHes of EVSE status spread over the bench EVSEs,
# each with its own later `last_updated`; answers counted as accepted only
# when HTTP 200 carries OCPI 1000. Placeholders are filled by `wrk_patches`.
_WRK_SCRIPT = r"""
local threads = {}
local prefix = "{prefix}"
local slots = {slots}
local locations = {locations}
local count = {threads}
local base_s = {base_s}
local auth = "{authorization}"
local statuses = {"AVAILABLE", "CHARGING", "RESERVED", "BLOCKED"}
local floor = math.floor

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  ok = 0
  other = 0
  wrk.headers["Content-Type"] = "application/json"
  if auth ~= "" then wrk.headers["Authorization"] = auth end
end

function request()
  local i = n * count + id
  n = n + 1
  local slot = i % slots
  local loc = slot % locations
  local number = floor(slot / locations)
  local ms = i % 1000
  if ms == 0 then ms = 1 end
  local second = os.date("!%Y-%m-%dT%H:%M:%S", base_s + floor(i / 1000))
  local stamp = second .. string.format(".%03dZ", ms)
  local path = string.format("%s-%05d/%s-%05d-%d", prefix, loc, "{evse_prefix}", loc, number + 1)
  local status = statuses[floor(i / slots) % 4 + 1]
  local body = string.format('{"status":"%s","last_updated":"%s"}', status, stamp)
  return wrk.format("PATCH", path, nil, body)
end

function response(status, headers, body)
  if status == 200 and string.find(body, '"status_code":1000', 1, true) then
    ok = ok + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local accepted, refused = 0, 0
  for _, t in ipairs(threads) do
    accepted = accepted + t:get("ok")
    refused = refused + t:get("other")
  end
  io.write(string.format(
    'WRK-RESULT {"requests":%d,"duration_us":%d,"accepted":%d,"not_accepted":%d,' ..
    '"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,' ..
    '"errors_timeout":%d,"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, accepted, refused,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk_patches(
    base_url: str,
    *,
    country_code: str,
    party_id: str,
    location_prefix: str,
    locations: int,
    evses_per_location: int,
    authorization: str = "",
    connections: int = 32,
    threads: int = 2,
    duration_s: int = 15,
    base_s: int | None = None,
) -> dict[str, Any]:
    """Drive PATCHes of EVSE status at ``base_url`` with wrk, closed loop
    (``connections`` in flight) for ``duration_s``; accepted per second and
    latency of every request (wrk's own histogram, microseconds)."""
    prefix = f"/ocpi/emsp/2.2.1/locations/{country_code}/{party_id}/{location_prefix}"
    script = (
        _WRK_SCRIPT.replace("{prefix}", prefix)
        .replace("{evse_prefix}", location_prefix)
        .replace("{slots}", str(locations * evses_per_location))
        .replace("{locations}", str(locations))
        .replace("{base_s}", str(base_s if base_s is not None else int(time.time()) - 3600))
        .replace("{authorization}", authorization)
        .replace("{threads}", str(threads))
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        completed = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{duration_s}s",
                "--timeout",
                "30s",
                "-s",
                path,
                base_url,
            ],
            capture_output=True,
            text=True,
            timeout=duration_s + 120,
            check=False,
        )
    finally:
        os.unlink(path)
    for line in completed.stdout.splitlines():
        if line.startswith("WRK-RESULT "):
            raw = json.loads(line.removeprefix("WRK-RESULT "))
            seconds = raw["duration_us"] / 1e6
            lat = raw["latency_us"]
            return {
                "tool": f"wrk -t{threads} -c{connections} -d{duration_s}s",
                "requests": raw["requests"],
                "accepted": raw["accepted"],
                "not_accepted": raw["not_accepted"],
                "accepted_per_s": round(raw["accepted"] / seconds, 1) if seconds else 0.0,
                "latency_ms": {k: round(v / 1000, 2) for k, v in lat.items()},
                "errors": {
                    k.removeprefix("errors_"): v
                    for k, v in raw.items()
                    if k.startswith("errors_") and v
                },
                "seconds": round(seconds, 2),
            }
    raise RuntimeError(f"wrk gave no result: {completed.stdout[-500:]} {completed.stderr[-500:]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def ceiling_app(kafka: str | None = None, topic: str | None = None) -> Iterator[str]:
    """Serve the ceiling app in a subprocess; yields its base URL."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.ceiling_app", "--port", str(port)]
    if kafka is not None and topic is not None:
        argv += ["--kafka", kafka, "--topic", topic]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"the ceiling app exited: {err[-500:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
