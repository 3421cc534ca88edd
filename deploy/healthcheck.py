#!/usr/bin/env python3
"""The container image's HEALTHCHECK: one image runs every ocpi-hub process,
so the check depends on which one this container runs.

    api          GET /readyz on OCPI_HUB_API_PORT must answer 200
    gateway      OCPI_HUB_GATEWAY_PORT must accept a TCP connection
    others       healthy while running (they serve no port; Docker restarts
                 them when they exit)

The process is read from PID 1's command line (``tini -- ocpi-hub api``), or
given as the first argument. Exit 0: healthy, 1: not. Standard library only.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

TIMEOUT_S = 3.0


def command_of(argv: list[str]) -> str | None:
    """The ocpi-hub subcommand in a command line, e.g. ``api``."""
    for i, arg in enumerate(argv[:-1]):
        if Path(arg).name == "ocpi-hub":
            return argv[i + 1]
    return None


def probe_for(command: str | None, env: dict[str, str]) -> tuple[str, int] | None:
    """What to probe: ("http", api port), ("tcp", gateway port), or nothing."""
    if command == "api":
        return "http", int(env.get("OCPI_HUB_API_PORT", "8000"))
    if command == "gateway":
        return "tcp", int(env.get("OCPI_HUB_GATEWAY_PORT", "8180"))
    return None


def healthy(probe: tuple[str, int] | None) -> bool:
    if probe is None:
        return True
    kind, port = probe
    if kind == "tcp":
        try:
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S).close()
        except OSError:
            return False
        return True
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main(args: list[str]) -> int:
    if args:
        command: str | None = args[0]
    else:
        raw = Path("/proc/1/cmdline").read_bytes()
        command = command_of([a.decode() for a in raw.split(b"\0") if a])
    return 0 if healthy(probe_for(command, dict(os.environ))) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
