#!/usr/bin/env python3
"""Local infrastructure for ocpi-hub, without Docker.

Starts Apache Kafka (KRaft, single node), a MongoDB wire-protocol server
(SecantusDB, or a real mongod), MariaDB and Redis as plain background
processes owned by this script, plus (optionally) the platform's own
processes.  Everything lives under the repository's ``data/`` folder:

    data/cache/     downloads kept across `clean` (Maven repo, Kafka jars)
    data/<service>/ service data, kept across restarts
    data/run/       pidfiles, ports.json, services.env, process metadata
    data/logs/      one log per process

Usage (from anywhere; paths are resolved against the repository root):

    python3 deploy/local/infra.py up [--only kafka,mongo,mariadb,redis] [--with-platform]
                                     [--scale N]
    python3 deploy/local/infra.py down [--only NAMES]
    python3 deploy/local/infra.py status
    python3 deploy/local/infra.py env
    python3 deploy/local/infra.py clean

Python 3.11 standard library only: this runs before the project's venv exists.
"""

# ruff: noqa: S603
# (S603: starting local programs found on PATH is this script's whole job.)
from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template

# --------------------------------------------------------------------------- #
# Platform processes started by `up --with-platform` (edit here).
#   name:      pidfile data/run/<name>.pid, log data/logs/<name>.log
#   argv:      relative paths are resolved against the repository root
#   readiness: "http:<path>" -> GET http://127.0.0.1:<api port><path> must
#              answer 200; "alive" -> still running after ALIVE_GRACE seconds;
#              "tcp:<setting>" -> the port named by that setting accepts connections;
#              "log:<text>" -> its log (since this start) contains <text>
# --------------------------------------------------------------------------- #
PLATFORM_PROCESSES: list[tuple[str, list[str], str]] = [
    ("api", [".venv/bin/ocpi-hub", "api"], "http:/readyz"),
    # Faust's worker logs "Ready" once its tables are recovered from their
    # changelogs and its agents consume; before that no update is resolved.
    ("processors", [".venv/bin/ocpi-hub", "processors"], "log:[^Worker]: Ready"),
    # Logged once its views are prepared (indexes, MySQL migrations) and it consumes.
    ("projections", [".venv/bin/ocpi-hub", "projections"], "log:projections_started"),
    ("push", [".venv/bin/ocpi-hub", "push"], "alive"),
    # Billing: activation e-mails to the SMTP service (smtp), members' charges
    # (docs/adr/0035).
    ("billing-worker", [".venv/bin/ocpi-hub", "billing-worker"], "alive"),
    # OCPP 1.6J chargers (docs/adr/0018): ready once its WebSocket port listens.
    ("gateway", [".venv/bin/ocpi-hub", "gateway"], "tcp:gateway"),
]
ALIVE_GRACE = 5.0
# Supervision (docs/adr/0030): a platform process that exits is started again
# after RESTART_INITIAL_S, doubling per exit up to RESTART_MAX_S; the delay
# falls back to RESTART_INITIAL_S once a run has lasted RESTART_RESET_S.
RESTART_INITIAL_S = float(os.environ.get("OCPI_HUB_PROCESS_RESTART_INITIAL_S", "1"))
RESTART_MAX_S = float(os.environ.get("OCPI_HUB_PROCESS_RESTART_MAX_S", "30"))
RESTART_RESET_S = float(os.environ.get("OCPI_HUB_PROCESS_RESTART_RESET_S", "60"))
KEEPER_POLL_S = 0.25
# Scale-out (`up --with-platform --scale N`, docs/scale-out.md). The API stays
# one process on its one port with N uvicorn workers (`ocpi-hub api
# --workers N`). These get N processes each, named <name>, <name>-2, ...,
# all in the same Kafka consumer group, so the partitions are split among them.
# Instances 2..N start once the first ones are ready: two projections
# preparing a fresh MySQL schema at once fail on each other's migrations.
SCALED_PROCESSES = ("processors", "projections")
MAX_SCALE = 16

SERVICES = ("kafka", "mongo", "mariadb", "redis", "smtp")

# port key -> (env var, default, fall back to the next free port if taken?)
PORT_SPECS: dict[str, tuple[str, int, bool]] = {
    "kafka": ("OCPI_HUB_KAFKA_PORT", 9092, False),
    "kafka_controller": ("OCPI_HUB_KAFKA_CONTROLLER_PORT", 9093, False),
    "mongo": ("OCPI_HUB_MONGO_PORT", 27017, True),
    "mariadb": ("OCPI_HUB_MYSQL_PORT", 3306, True),
    "redis": ("OCPI_HUB_REDIS_PORT", 6379, True),
    # The local SMTP server of billing e-mails (aiosmtpd, docs/adr/0035).
    "smtp": ("OCPI_HUB_SMTP_PORT", 2525, True),
    "api": ("OCPI_HUB_API_PORT", 8000, False),
    "gateway": ("OCPI_HUB_GATEWAY_PORT", 8180, False),
}
PORT_FALLBACK_RANGE = 20

MYSQL_DATABASE = "ocpi_hub"
MYSQL_USER = "ocpi"
MYSQL_PASSWORD = "ocpi"  # noqa: S105 (local development credentials)

# services.env lines (read by the application's settings)
ENV_LINES = {
    "kafka": "OCPI_HUB_KAFKA_BOOTSTRAP=127.0.0.1:{port}",
    "mongo": "OCPI_HUB_MONGO_URL=mongodb://127.0.0.1:{port}",
    "mariadb": (
        f"OCPI_HUB_MYSQL_URL=mysql+pymysql://{MYSQL_USER}:{MYSQL_PASSWORD}@127.0.0.1:{{port}}/"
        f"{MYSQL_DATABASE}"
    ),
    "redis": "OCPI_HUB_REDIS_URL=redis://127.0.0.1:{port}/0",
    "smtp": "OCPI_HUB_SMTP_PORT={port}",
}
PRETTY = {
    "kafka": "Kafka",
    "kafka_controller": "Kafka controller",
    "mongo": "MongoDB",
    "mariadb": "MariaDB",
    "redis": "Redis",
    "smtp": "SMTP (aiosmtpd)",
    "api": "the API",
}

HEALTH_TIMEOUT = float(os.environ.get("OCPI_HUB_HEALTH_TIMEOUT", "60"))
# Platform processes whose readiness may take longer (every instance of a
# scaled one): the processors recover their tables from changelogs that
# grow with what the platform has seen (50 s here after a few benchmarks).
READY_TIMEOUT = {"processors": max(HEALTH_TIMEOUT, 600.0)}
KAFKA_HEAP_OPTS = os.environ.get("OCPI_HUB_KAFKA_HEAP_OPTS", "-Xms256m -Xmx512m").split()
STOP_TIMEOUT = {"kafka": 45.0, "mariadb": 45.0}  # others: DEFAULT_STOP_TIMEOUT
DEFAULT_STOP_TIMEOUT = 15.0

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# Tests of the supervisor point this at a scratch folder (never the platform's).
DATA = Path(os.environ.get("OCPI_HUB_INFRA_DATA") or REPO / "data")
# Downloads (Kafka's jars); a scratch stack (the fault suite, tests/chaos)
# shares the project's cache instead of fetching them again.
CACHE = Path(os.environ.get("OCPI_HUB_INFRA_CACHE") or DATA / "cache")
RUN = DATA / "run"
LOGS = DATA / "logs"
ENV_FILE = RUN / "services.env"
PORTS_FILE = RUN / "ports.json"
KAFKA_POM = HERE / "kafka" / "pom.xml"
KAFKA_TEMPLATE = HERE / "kafka" / "server.properties.template"

IS_ROOT = os.geteuid() == 0
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")


class InfraError(Exception):
    """A failure to report to the user (one clear message, exit 1)."""


def say(msg: str) -> None:
    print(f"infra: {msg}", file=sys.stderr, flush=True)


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def tail(path: Path, lines: int = 25) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return f"    (no log at {rel(path)})"
    out = text.splitlines()[-lines:]
    starts = [i for i, line in enumerate(out) if line.startswith("===== ")]
    if starts:  # only what this start wrote (see Proc.spawn)
        out = out[starts[-1] :]
    return "\n".join("    " + line for line in out) or "    (log is empty)"


def logged_run(
    cmd: list[str],
    log: Path,
    timeout: float,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> int:
    """Run a provisioning step to completion, its output appended to ``log``
    under a ``=====`` line (what ``tail`` shows); -1 when it timed out."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        fh.write(f"\n===== {' '.join(cmd)}\n".encode())
        fh.flush()
        try:
            return subprocess.run(
                cmd,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            fh.write(f"\n(timed out after {timeout:.0f} s)\n".encode())
            return -1


def maven_jars(pom: Path, repo: Path, out: Path, log: Path) -> int:
    """Maven copies the runtime dependencies ``pom`` declares into ``out``
    (Maven Central; ``repo`` is the local repository, under data/cache)."""
    cmd = [
        "mvn",
        "-B",
        "-ntp",
        "-f",
        str(pom),
        f"-Dmaven.repo.local={repo}",
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={out}",
    ]
    return logged_run(cmd, log, 900, cwd=pom.parent)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def which(name: str, extra_dirs: tuple[str, ...] = SBIN_DIRS) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in extra_dirs:
        candidate = Path(d) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


# --------------------------------------------------------------------------- #
# Processes: identity (pid + start time + cmdline), spawning, stopping.
# --------------------------------------------------------------------------- #
def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat (0-based: [2] state, [4] pgrp, [21] starttime)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may contain spaces/parentheses: split after the last ')'.
    close = raw.rindex(")")
    return [str(pid), raw[raw.index("(") + 1 : close], *raw[close + 2 :].split()]


def proc_starttime(pid: int) -> int | None:
    """Start time (clock ticks since boot) of a live process; None if gone or a zombie."""
    st = _proc_stat(pid)
    if st is None or st[2] in ("Z", "X"):
        return None
    return int(st[21])


def proc_pgrp(pid: int) -> int | None:
    st = _proc_stat(pid)
    return int(st[4]) if st else None


def proc_cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def group_members(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _proc_stat(int(entry.name))
            if st and st[2] not in ("Z", "X") and int(st[4]) == pgid:
                pids.append(int(entry.name))
    return pids


@dataclass
class Running:
    pid: int
    port: int | None
    meta: dict


class Proc:
    """A process this script starts: pidfile, metadata, log."""

    def __init__(self, name: str, match: str | None = None):
        self.name = name
        # A substring its /proc/<pid>/cmdline must contain (recorded at spawn
        # time; default: the program's file name).
        self.match = match
        self.pidfile = RUN / f"{name}.pid"
        self.metafile = RUN / f"{name}.meta.json"
        self.log = LOGS / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def _forget(self) -> None:
        for p in (self.pidfile, self.metafile):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()

    def running(self, quiet: bool = False, forget: bool = True) -> Running | None:
        """Our live process, or None (a stale pidfile is removed, unless
        `forget` is False: a reader that does not own the pidfile)."""
        try:
            pid = int(self.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            if forget and self.pidfile.exists():
                self._forget()
            return None
        try:
            meta = json.loads(self.metafile.read_text())
        except (OSError, ValueError):
            meta = {}
        # Ours only if start time and command line both match what we recorded
        # when we started it; anything less (no metadata, pid reused) is stale.
        start = proc_starttime(pid)
        cmdline = proc_cmdline(pid)
        ok = (
            start is not None
            and meta.get("starttime") == start
            and bool(meta.get("match"))
            and meta["match"] in cmdline
        )
        if not ok:
            if not quiet:
                what = (
                    "gone" if start is None else f"pid now belongs to: {proc_cmdline(pid)[:80]!r}"
                )
                say(f"{self.name}: removing stale pidfile (pid {pid} {what})")
            if forget:
                self._forget()
            return None
        return Running(pid, meta.get("port"), meta)

    def spawn(
        self,
        argv: list[str],
        port: int | None,
        env: dict | None = None,
        cwd: Path = REPO,
        extra_meta: dict | None = None,
    ) -> int:
        LOGS.mkdir(parents=True, exist_ok=True)
        RUN.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"\n===== {stamp} infra.py starting {self.name}: {' '.join(argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        pid = self.popen.pid
        start = None
        for _ in range(50):
            start = proc_starttime(pid)
            if start is not None or self.popen.poll() is not None:
                break
            time.sleep(0.01)
        meta = {
            "pid": pid,
            "starttime": start,
            "port": port,
            "argv": argv,
            "match": self.match or Path(argv[0]).name,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        meta.update(extra_meta or {})
        write_atomic(self.metafile, json.dumps(meta, indent=2) + "\n")
        write_atomic(self.pidfile, f"{pid}\n")
        return pid

    def exited(self) -> int | None:
        """Exit code if the process we spawned in this run has died."""
        if self.popen is not None:
            return self.popen.poll()
        return None if self.running(quiet=True) else -1

    def stop(self, timeout: float | None = None) -> bool:
        """SIGTERM the process group, wait, then SIGKILL. True if something was stopped."""
        run = self.running(quiet=self.popen is not None)
        if run is None:
            return False
        timeout = (
            timeout if timeout is not None else STOP_TIMEOUT.get(self.name, DEFAULT_STOP_TIMEOUT)
        )
        pid = run.pid
        # We start every process in its own session, so its pgid is its pid.
        # Only signal the group if that still holds; never anything else.
        pgid = pid if proc_pgrp(pid) == pid else None
        say(f"{self.name}: stopping pid {pid}")

        def send(sig: int) -> None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if pgid is not None:
                    os.killpg(pgid, sig)
                else:
                    os.kill(pid, sig)

        send(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = proc_starttime(pid)
            if now is None or now != run.meta.get("starttime", now):
                break
            time.sleep(0.2)
        else:
            say(f"{self.name}: still running after {timeout:.0f}s; sending SIGKILL")
            send(signal.SIGKILL)
            time.sleep(0.5)
        # Members of its process group that outlived it (e.g. worker children).
        if pgid is not None and group_members(pgid):
            send(signal.SIGTERM)
            deadline = time.monotonic() + 5
            while group_members(pgid) and time.monotonic() < deadline:
                time.sleep(0.2)
            for member in group_members(pgid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(member, signal.SIGKILL)
        if self.popen is not None:
            self.popen.poll()  # reap it if it is our own child
        self._forget()
        return True


# --------------------------------------------------------------------------- #
# Ports
# --------------------------------------------------------------------------- #
def port_free(port: int) -> bool:
    """Can we listen on 127.0.0.1:port (and nobody answers there)?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) != 0


def port_owner(port: int) -> str | None:
    """'pid N: cmdline' of the process listening on port (best effort, via /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if len(f) > 9 and f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{f[9]}]")
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in inodes:
                    cmd = " ".join(proc_cmdline(int(entry.name)).split()) or "?"
                    return f"pid {entry.name}: {cmd[:120]}"
            except OSError:
                continue
    return None


def load_ports() -> dict[str, int]:
    try:
        data = json.loads(PORTS_FILE.read_text())
        return {k: int(v) for k, v in data.items() if k in PORT_SPECS}
    except (OSError, ValueError, TypeError):
        return {}


def save_ports(update: dict[str, int]) -> None:
    ports = load_ports()
    ports.update(update)
    write_atomic(PORTS_FILE, json.dumps(ports, indent=2, sort_keys=True) + "\n")


class PortPicker:
    def __init__(self) -> None:
        self.persisted = load_ports()
        self.claimed: set[int] = set()

    def env_port(self, key: str) -> int | None:
        var = PORT_SPECS[key][0]
        raw = os.environ.get(var, "").strip()
        if not raw:
            return None
        if not raw.isdigit() or not 0 < int(raw) < 65536:
            raise InfraError(f"{var}={raw!r} is not a valid TCP port")
        return int(raw)

    def preferred(self, key: str) -> int:
        default = PORT_SPECS[key][1]
        env = self.env_port(key)
        return env if env is not None else self.persisted.get(key, default)

    def pick(self, key: str, label: str) -> int:
        var, default, fallback = PORT_SPECS[key]
        env = self.env_port(key)
        if not fallback:
            port = self.preferred(key)
            if port in self.claimed or not port_free(port):
                owner = (
                    port_owner(port)
                    if port not in self.claimed
                    else "another ocpi-hub service of this run"
                )
                raise InfraError(
                    f"port {port} ({label}) is taken by another process "
                    f"({owner or 'owner not visible to this user'}); set {var} to a free port"
                )
            self.claimed.add(port)
            return port
        candidates: list[int] = []
        if env is None and key in self.persisted:
            candidates.append(self.persisted[key])
        base = env if env is not None else default
        candidates += [base + i for i in range(PORT_FALLBACK_RANGE + 1) if base + i < 65536]
        first = candidates[0]
        for port in dict.fromkeys(candidates):
            if port not in self.claimed and port_free(port):
                if port != first:
                    owner = port_owner(first)
                    say(
                        f"{label}: port {first} is taken ({owner or 'owner unknown'}); "
                        f"using {port} instead (set {var} to choose)"
                    )
                self.claimed.add(port)
                return port
        raise InfraError(
            f"{label}: no free port in {base}..{base + PORT_FALLBACK_RANGE}; set {var}"
        )


# --------------------------------------------------------------------------- #
# Wire-protocol probes (stdlib only)
# --------------------------------------------------------------------------- #
def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by server")
        buf += chunk
    return bytes(buf)


def kafka_probe(port: int, timeout: float = 3.0) -> tuple[bool, str]:
    """Metadata v4 request: ready once a broker is registered and a controller known."""
    client_id = b"ocpi-hub-infra"
    req = struct.pack(">hhih", 3, 4, 7, len(client_id)) + client_id + struct.pack(">ib", -1, 0)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(req)) + req)
        (size,) = struct.unpack(">i", _recv_exact(s, 4))
        data = _recv_exact(s, size)
    _corr, _throttle, nbrokers = struct.unpack_from(">iii", data, 0)
    off = 12
    for _ in range(nbrokers):
        off += 4  # node_id
        (hlen,) = struct.unpack_from(">h", data, off)
        off += 2 + hlen + 4  # host, port
        (rlen,) = struct.unpack_from(">h", data, off)
        off += 2 + max(rlen, 0)  # rack
    (clen,) = struct.unpack_from(">h", data, off)
    off += 2 + max(clen, 0)  # cluster_id
    (controller,) = struct.unpack_from(">i", data, off)
    if nbrokers >= 1 and controller >= 0:
        return True, f"{nbrokers} broker(s), controller {controller}"
    return False, f"metadata: {nbrokers} broker(s), controller {controller}"


def _bson(doc: dict[str, int | str]) -> bytes:
    body = b""
    for key, value in doc.items():
        k = key.encode() + b"\0"
        if isinstance(value, int):
            body += b"\x10" + k + struct.pack("<i", value)
        else:
            v = value.encode() + b"\0"
            body += b"\x02" + k + struct.pack("<i", len(v)) + v
    return struct.pack("<i", len(body) + 5) + body + b"\0"


def _bson_top_level(data: bytes) -> dict[str, object]:
    """Top-level scalar fields of a BSON document (nested values are skipped)."""
    fixed = {
        0x01: 8,
        0x07: 12,
        0x08: 1,
        0x09: 8,
        0x0A: 0,
        0x10: 4,
        0x11: 8,
        0x12: 8,
        0x13: 16,
        0xFF: 0,
        0x7F: 0,
    }
    out: dict[str, object] = {}
    off, end = 4, struct.unpack_from("<i", data, 0)[0] - 1
    while off < end:
        t = data[off]
        nul = data.index(b"\0", off + 1)
        key = data[off + 1 : nul].decode("utf-8", "replace")
        off = nul + 1
        if t == 0x01:
            out[key] = struct.unpack_from("<d", data, off)[0]
        elif t == 0x08:
            out[key] = bool(data[off])
        elif t == 0x10:
            out[key] = struct.unpack_from("<i", data, off)[0]
        elif t == 0x12:
            out[key] = struct.unpack_from("<q", data, off)[0]
        if t in fixed:
            off += fixed[t]
        elif t in (0x02, 0x0D, 0x0E):  # string, js code, symbol
            (slen,) = struct.unpack_from("<i", data, off)
            if t == 0x02:
                out[key] = data[off + 4 : off + 3 + slen].decode("utf-8", "replace")
            off += 4 + slen
        elif t in (0x03, 0x04, 0x0F):  # document, array, code w/ scope
            off += struct.unpack_from("<i", data, off)[0]
        elif t == 0x05:  # binary
            off += 5 + struct.unpack_from("<i", data, off)[0]
        elif t == 0x0B:  # regex: two cstrings
            off = data.index(b"\0", data.index(b"\0", off) + 1) + 1
        elif t == 0x0C:  # dbpointer
            off += 4 + struct.unpack_from("<i", data, off)[0] + 12
        else:
            break
    return out


def mongo_probe(port: int, timeout: float = 3.0) -> tuple[bool, str]:
    """OP_MSG {ping: 1} round-trip."""
    doc = _bson({"ping": 1, "$db": "admin"})
    body = struct.pack("<I", 0) + b"\x00" + doc
    msg = struct.pack("<iiii", 16 + len(body), 1, 0, 2013) + body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(msg)
        (length, _rid, _to, opcode) = struct.unpack("<iiii", _recv_exact(s, 16))
        payload = _recv_exact(s, length - 16)
    if opcode != 2013 or payload[4] != 0:
        return False, f"unexpected reply (opcode {opcode})"
    fields = _bson_top_level(payload[5:])
    if fields.get("ok") in (1, 1.0, True):
        return True, "ping ok"
    return False, f"ping answered {fields}"


def redis_probe(port: int, timeout: float = 3.0) -> tuple[bool, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        reply = s.recv(64)
    if reply.startswith(b"+PONG"):
        return True, "PONG"
    return False, f"PING answered {reply[:40]!r}"


def smtp_probe(port: int, timeout: float = 3.0) -> tuple[bool, str]:
    """The server's greeting (220), then QUIT."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        greeting = s.recv(512)
        with contextlib.suppress(OSError):
            s.sendall(b"QUIT\r\n")
    if greeting.startswith(b"220"):
        return True, greeting.decode("ascii", "replace").strip()[:80]
    return False, f"greeting {greeting[:40]!r}"


def mysql_probe(port: int, timeout: float = 3.0) -> tuple[bool, str]:
    """The server's initial handshake packet (protocol 10), or its error packet."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        header = _recv_exact(s, 4)
        payload = _recv_exact(s, int.from_bytes(header[:3], "little"))
    if payload[:1] == b"\x0a":
        return True, "handshake " + payload[1 : payload.index(b"\0", 1)].decode("ascii", "replace")
    return False, f"server answered {payload[:60]!r}"


def tcp_probe(port: int, timeout: float = 2.0) -> tuple[bool, str]:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True, "accepting"
    except OSError as e:
        return False, str(e)


def http_probe(url: str, timeout: float = 3.0) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (http only)
            return resp.status == 200, f"HTTP {resp.status}"
    except urllib.error.HTTPError as e:
        return False, f"HTTP {e.code}"
    except (urllib.error.URLError, OSError) as e:
        return False, str(getattr(e, "reason", e))


def wait_healthy(
    proc: Proc,
    check: Callable[[], tuple[bool, str]],
    timeout: float = HEALTH_TIMEOUT,
    log: Path | None = None,
) -> float:
    """Poll `check` until it passes; fail early if the process exits."""
    t0 = time.monotonic()
    last = "not checked yet"
    log = log or proc.log
    while True:
        code = proc.exited()
        if code is not None:
            raise InfraError(
                f"{proc.name} exited during start-up (exit code {code}); "
                f"last lines of {rel(log)}:\n{tail(log)}"
            )
        try:
            ok, last = check()
        except (OSError, struct.error, ValueError, IndexError, subprocess.TimeoutExpired) as e:
            ok, last = False, f"{type(e).__name__}: {e}"
        if ok:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise InfraError(
                f"{proc.name} did not become healthy within {timeout:.0f}s (last check: {last}); "
                f"last lines of {rel(log)}:\n{tail(log)}"
            )
        time.sleep(0.5)


# --------------------------------------------------------------------------- #
# System packages
# --------------------------------------------------------------------------- #
# The invoice PDF's default font (OCPI_HUB_BILLING_PDF_FONT_REGULAR).
DEJAVU_SANS = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


class Apt:
    updated = False

    @classmethod
    def install(cls, packages: list[str], why: str) -> None:
        if not IS_ROOT:
            raise InfraError(
                f"{why} not installed; run as root or: sudo apt-get install {' '.join(packages)}"
            )
        if not shutil.which("apt-get"):
            raise InfraError(
                f"{why} not installed and apt-get is not available: install {' '.join(packages)}"
            )
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        log = LOGS / "apt.log"
        LOGS.mkdir(parents=True, exist_ok=True)
        steps = []
        if not cls.updated:
            steps.append(["apt-get", "-o", "DPkg::Lock::Timeout=300", "update"])
        steps.append(
            [
                "apt-get",
                "-o",
                "DPkg::Lock::Timeout=300",
                "install",
                "-y",
                "--no-install-recommends",
                *packages,
            ]
        )
        say(f"installing {' '.join(packages)} with apt-get (log: {rel(log)})")
        for cmd in steps:
            rc = logged_run(cmd, log, 900, env=env)
            if "update" in cmd:
                cls.updated = True
                if rc != 0:  # stale package lists may still do
                    say(f"warning: apt-get update failed (exit {rc}); trying the install anyway")
                continue
            if rc != 0:
                raise InfraError(
                    f"`{' '.join(cmd)}` failed (exit {rc}); last lines of {rel(log)}:\n{tail(log)}"
                )


# --------------------------------------------------------------------------- #
# Services
# --------------------------------------------------------------------------- #
class Service:
    name = ""
    port_keys: tuple[str, ...] = ()
    match = ""

    def __init__(self) -> None:
        self.proc = Proc(self.name, self.match or None)
        self.ports: dict[str, int] = {}
        self.datadir = DATA / self.name

    # steps of `up`, in order
    def packages_needed(self) -> list[str]:
        return []

    def check_tools(self) -> None:
        pass

    def prepare(self) -> None:
        pass

    def argv(self) -> list[str]:
        raise NotImplementedError

    def health(self) -> tuple[bool, str]:
        raise NotImplementedError

    def after_healthy(self) -> None:
        pass

    def start(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        argv = self.argv()
        pid = self.proc.spawn(argv, self.ports[self.port_keys[0]], extra_meta={"ports": self.ports})
        port = self.ports[self.port_keys[0]]
        say(f"{self.name}: started pid {pid} on 127.0.0.1:{port} (log: {rel(self.proc.log)})")


class Kafka(Service):
    name = "kafka"
    port_keys = ("kafka", "kafka_controller")
    match = "kafka.Kafka"

    def __init__(self) -> None:
        super().__init__()
        self.version = self._pom_version()
        self.home = CACHE / f"kafka-{self.version}"
        self.libs = self.home / "libs"
        self.m2 = CACHE / "m2"
        self.props = self.datadir / "server.properties"
        self.log4j = self.datadir / "log4j.properties"
        self.logdir = self.datadir / "log"
        self.java = ""

    @staticmethod
    def _pom_version() -> str:
        try:
            m = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", KAFKA_POM.read_text())
        except OSError as e:
            raise InfraError(f"cannot read {rel(KAFKA_POM)}: {e}") from e
        if not m:
            raise InfraError(f"no <kafka.version> property in {rel(KAFKA_POM)}")
        return m.group(1).strip()

    def _pom_digest(self) -> str:
        return hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()

    def _libs_ready(self) -> bool:
        marker = self.home / ".complete"
        return (
            marker.exists()
            and marker.read_text().strip() == self._pom_digest()
            and self.libs.is_dir()
        )

    def check_tools(self) -> None:
        java_home = os.environ.get("JAVA_HOME")
        java = (
            str(Path(java_home) / "bin" / "java")
            if java_home and (Path(java_home) / "bin" / "java").exists()
            else shutil.which("java")
        )
        hint = "install openjdk-17-jre-headless"
        if not java:
            raise InfraError(f"Java 17+ not found (no `java` on PATH): {hint}")
        try:
            out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise InfraError(f"Java 17+ not found (java -version failed: {e}): {hint}") from e
        m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
        if out.returncode != 0 or not m:
            raise InfraError(f"Java 17+ not found (java -version failed): {hint}")
        major = int(m.group(1)) if m.group(1) != "1" else int(m.group(2) or 0)
        if major < 17:
            raise InfraError(
                f"Java 17+ required for Kafka {self.version}, found Java {major} ({java}): {hint}"
            )
        self.java = java
        if not self._libs_ready() and not shutil.which("mvn"):
            raise InfraError(
                f"mvn not found: Maven is needed once to download the Kafka {self.version} jars "
                f"into {rel(self.libs)} (apt-get install maven)"
            )

    def _fetch_libs(self) -> None:
        if self._libs_ready():
            return
        log = LOGS / "kafka-maven.log"
        tmp = self.home / "libs.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        self.home.mkdir(parents=True, exist_ok=True)
        say(
            f"kafka: downloading Kafka {self.version} jars with Maven into {rel(self.libs)} "
            f"(log: {rel(log)})"
        )
        t0 = time.monotonic()
        rc = maven_jars(KAFKA_POM, self.m2, tmp, log)
        if rc != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
            raise InfraError(
                f"downloading the Kafka jars failed (exit {rc}); last lines of {rel(log)}:\n"
                f"{tail(log)}"
            )
        shutil.rmtree(self.libs, ignore_errors=True)
        os.replace(tmp, self.libs)
        (self.home / ".complete").write_text(self._pom_digest() + "\n")
        jars = len(list(self.libs.glob("*.jar")))
        say(f"kafka: {jars} jars ready in {time.monotonic() - t0:.1f}s")

    def _jvm(self, main: str, *args: str) -> list[str]:
        return [
            self.java,
            *KAFKA_HEAP_OPTS,
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={LOGS}",
            f"-Dlog4j.configuration=file:{self.log4j}",
            "-cp",
            f"{self.libs}/*",
            main,
            *args,
        ]

    def _cluster_id(self) -> str:
        path = self.datadir / "cluster.id"
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        while True:  # Kafka's own random ids never start with '-' (CLI-unfriendly)
            cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            if not cid.startswith("-"):
                break
        write_atomic(path, cid + "\n")
        return cid

    def prepare(self) -> None:
        self._fetch_libs()
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.logdir.mkdir(parents=True, exist_ok=True)
        try:
            props = Template(KAFKA_TEMPLATE.read_text()).substitute(
                port=self.ports["kafka"],
                controller_port=self.ports["kafka_controller"],
                log_dirs=self.logdir,
            )
        except (KeyError, ValueError) as e:
            raise InfraError(f"bad placeholder in {rel(KAFKA_TEMPLATE)}: {e!r}") from e
        write_atomic(self.props, props)
        write_atomic(self.log4j, LOG4J_PROPERTIES)
        if (self.logdir / "meta.properties").exists():
            return
        cid = self._cluster_id()
        say(f"kafka: formatting storage {rel(self.logdir)} (cluster id {cid})")
        out = subprocess.run(
            self._jvm("kafka.tools.StorageTool", "format", "-t", cid, "-c", str(self.props)),
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        with open(LOGS / "kafka.log", "a") as fh:
            fh.write(out.stdout + out.stderr)
        if out.returncode != 0 or not (self.logdir / "meta.properties").exists():
            raise InfraError(
                f"kafka storage format failed (exit {out.returncode}):\n{out.stdout}{out.stderr}"
            )

    def argv(self) -> list[str]:
        return self._jvm("kafka.Kafka", str(self.props))

    def health(self) -> tuple[bool, str]:
        return kafka_probe(self.ports["kafka"])


LOG4J_PROPERTIES = """\
# Generated by deploy/local/infra.py: the broker logs to data/logs/kafka.log only.
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=${kafka.logs.dir}/kafka.log
log4j.appender.file.Append=true
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=3
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.network.RequestChannel$=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.org.apache.kafka.controller=INFO
log4j.logger.kafka.authorizer.logger=WARN
"""


class Mongo(Service):
    name = "mongo"
    port_keys = ("mongo",)
    match = ""  # set in __init__ from the binary in use

    def __init__(self) -> None:
        override = os.environ.get("OCPI_HUB_MONGOD", "").strip()
        if override:
            self.binary = shutil.which(override) or override
            self.real_mongod = "secantus" not in Path(self.binary).name
        else:
            self.binary = str(REPO / ".venv" / "bin" / "secantusd-py")
            self.real_mongod = False
        # SecantusDB runs through our launcher (deploy/local/secantusd.py,
        # docs/adr/0052); both command lines hold "secantusd".
        self.match = "secantusd" if not self.real_mongod else Path(self.binary).name
        super().__init__()
        if self.real_mongod:
            self.datadir = DATA / "mongo-mongod"  # never mix mongod and SecantusDB files

    def check_tools(self) -> None:
        if not (Path(self.binary).is_file() and os.access(self.binary, os.X_OK)):
            if os.environ.get("OCPI_HUB_MONGOD", "").strip():
                raise InfraError(f"OCPI_HUB_MONGOD={self.binary} is not an executable file")
            raise InfraError(
                f"SecantusDB (the local MongoDB server) not found at {rel(Path(self.binary))}: "
                "run `make venv` first (or set OCPI_HUB_MONGOD to a mongod binary)"
            )

    def argv(self) -> list[str]:
        port = str(self.ports["mongo"])
        if self.real_mongod:
            return [
                self.binary,
                "--dbpath",
                str(self.datadir),
                "--port",
                port,
                "--bind_ip",
                "127.0.0.1",
            ]
        # An explicit (empty) --config keeps SecantusDB from picking up a stray secantusd.toml.
        # --standalone: no single-node replica set, hence no oplog, which
        # only change streams and transactions need and our code uses
        # neither; every write is then one write, not two (docs/adr/0023).
        config = RUN / "secantusd.toml"
        if not config.exists():
            write_atomic(
                config,
                "# Generated by deploy/local/infra.py: settings come from the command line.\n",
            )
        return [
            str(Path(self.binary).with_name("python")),
            str(REPO / "deploy" / "local" / "secantusd.py"),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            port,
            "--storage-path",
            str(self.datadir),
            "--standalone",
        ]

    def health(self) -> tuple[bool, str]:
        return mongo_probe(self.ports["mongo"])


class MariaDB(Service):
    name = "mariadb"
    port_keys = ("mariadb",)
    match = ""  # the server binary's name, see _resolve()

    def __init__(self) -> None:
        super().__init__()
        self._resolve()
        self.socket = RUN / "mariadb.sock"
        if len(str(self.socket)) > 100:  # AF_UNIX path limit (108 bytes)
            short = hashlib.sha256(str(REPO).encode()).hexdigest()[:10]
            self.socket = Path(tempfile.gettempdir()) / f"ocpi-hub-{short}" / "mariadb.sock"
        self.marker = self.datadir / ".ocpi-hub-initialized"
        self.is_mariadb = True

    def _resolve(self) -> None:
        self.server = which("mariadbd") or which("mysqld")
        self.client = which("mariadb") or which("mysql")
        self.install_db = which("mariadb-install-db") or which("mysql_install_db")
        if self.server:
            self.proc.match = Path(self.server).name

    def packages_needed(self) -> list[str]:
        pkgs = []
        if not self.server:
            pkgs.append("mariadb-server")
        if not self.client:
            pkgs.append("mariadb-client")
        return pkgs

    def check_tools(self) -> None:
        self._resolve()  # again, after a possible apt-get install
        if not self.server or not self.client:
            raise InfraError(
                "MariaDB not installed; run as root or: sudo apt-get install mariadb-server"
            )
        out = subprocess.run([self.server, "--version"], capture_output=True, text=True, timeout=30)
        self.is_mariadb = "mariadb" in (out.stdout + out.stderr).lower()
        if self.is_mariadb and not self.install_db:
            raise InfraError("mariadb-install-db not found; install mariadb-server")

    def _user_args(self) -> list[str]:
        return ["--user=root"] if IS_ROOT else []

    def prepare(self) -> None:
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        if self.marker.exists():
            return
        # A data dir without our marker never finished initialising: start over.
        shutil.rmtree(self.datadir, ignore_errors=True)
        self.datadir.mkdir(parents=True)
        log = LOGS / "mariadb-install.log"
        if self.is_mariadb:
            cmd = [
                self.install_db,
                "--no-defaults",
                f"--datadir={self.datadir}",
                *self._user_args(),
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ]
        else:  # Oracle MySQL
            cmd = [
                self.server,
                "--no-defaults",
                "--initialize-insecure",
                f"--datadir={self.datadir}",
                *self._user_args(),
            ]
        say(f"mariadb: initialising private data dir {rel(self.datadir)} (log: {rel(log)})")
        rc = logged_run(cmd, log, 300)
        if rc != 0:
            raise InfraError(
                f"initialising {rel(self.datadir)} failed (exit {rc}); last lines of {rel(log)}:\n"
                f"{tail(log)}"
            )
        self.marker.write_text("initialised by deploy/local/infra.py\n")

    def argv(self) -> list[str]:
        args = [
            self.server,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.socket}",
            f"--port={self.ports['mariadb']}",
            "--bind-address=127.0.0.1",
            f"--pid-file={self.datadir / 'mariadbd.pid'}",
            f"--log-error={self.proc.log}",
            *self._user_args(),
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            "--skip-name-resolve",
            "--innodb-flush-log-at-trx-commit=2",
            "--log-warnings=1",  # no "Aborted connection" notes for every probe
        ]
        if not self.is_mariadb:
            args.append("--mysqlx=OFF")
        return args

    def _client(self, args: list[str], timeout: float) -> subprocess.CompletedProcess:
        cmd = [self.client, "--no-defaults", "--batch", "--skip-column-names", *args]
        try:
            return subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(cmd, 124, "", f"no answer within {timeout:.0f}s")

    def sql(self, statements: str, timeout: float = 20) -> subprocess.CompletedProcess:
        """Run SQL as root through our private socket."""
        return self._client(
            ["--protocol=socket", f"--socket={self.socket}", "-uroot", "-e", statements], timeout
        )

    def health(self) -> tuple[bool, str]:
        if not self.socket.exists():
            return False, f"no socket {self.socket} yet"
        out = self.sql("SELECT 1", timeout=10)
        if out.returncode == 0 and out.stdout.strip() == "1":
            return True, "SELECT 1 ok"
        return False, (out.stderr or out.stdout).strip()[:200]

    def after_healthy(self) -> None:
        db, user, pw = MYSQL_DATABASE, MYSQL_USER, MYSQL_PASSWORD
        stmts = [
            f"CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        ]
        for host in ("127.0.0.1", "localhost"):
            stmts += [
                f"CREATE USER IF NOT EXISTS '{user}'@'{host}' IDENTIFIED BY '{pw}'",
                f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'{host}'",
            ]
        # mariadb-install-db also creates root@<hostname>, which only produces a
        # warning on every start under --skip-name-resolve: drop it.
        out = self.sql(
            "SELECT Host FROM mysql.user WHERE User = 'root' "
            "AND Host NOT IN ('localhost', '127.0.0.1', '::1')"
        )
        for host in out.stdout.split() if out.returncode == 0 else []:
            stmts.append(f"DROP USER IF EXISTS 'root'@'{host}'")
        stmts.append("FLUSH PRIVILEGES")
        out = self.sql(";\n".join(stmts) + ";")
        if out.returncode != 0:
            raise InfraError(
                f"mariadb: creating database/user failed: {(out.stderr or out.stdout).strip()}"
            )
        # Same path the application takes: TCP, as the application user.
        tcp = ["--protocol=tcp", "-h", "127.0.0.1", f"-P{self.ports['mariadb']}"]
        check = self._client([*tcp, f"-u{user}", f"-p{pw}", db, "-e", "SELECT 1"], timeout=20)
        if check.returncode != 0:
            raise InfraError(f"mariadb: TCP login as {user} failed: {check.stderr.strip()}")


class Redis(Service):
    name = "redis"
    port_keys = ("redis",)
    match = "redis-server"

    def __init__(self) -> None:
        super().__init__()
        self.server = which("redis-server")

    def packages_needed(self) -> list[str]:
        return [] if self.server else ["redis-server"]

    def check_tools(self) -> None:
        self.server = which("redis-server")
        if not self.server:
            raise InfraError(
                "Redis not installed; run as root or: sudo apt-get install redis-server"
            )

    def argv(self) -> list[str]:
        return [
            self.server,
            "--port",
            str(self.ports["redis"]),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.datadir),
            "--daemonize",
            "no",
        ]

    def health(self) -> tuple[bool, str]:
        return redis_probe(self.ports["redis"])


class Smtp(Service):
    """aiosmtpd from the venv: accepts any message and keeps it in a Maildir
    (data/smtp/maildir), so the activation e-mails can be read locally."""

    name = "smtp"
    port_keys = ("smtp",)
    match = "aiosmtpd"

    def __init__(self) -> None:
        super().__init__()
        self.python = str(REPO / ".venv" / "bin" / "python")

    def check_tools(self) -> None:
        out = subprocess.run(
            [self.python, "-c", "import aiosmtpd"], capture_output=True, text=True, timeout=30
        )
        if out.returncode != 0:
            raise InfraError("aiosmtpd not installed in .venv: run `make venv` first")

    def argv(self) -> list[str]:
        maildir = self.datadir / "maildir"
        return [
            self.python,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{self.ports['smtp']}",
            "-c",
            "aiosmtpd.handlers.Mailbox",
            str(maildir),
        ]

    def health(self) -> tuple[bool, str]:
        return smtp_probe(self.ports["smtp"])


SERVICE_CLASSES: dict[str, type[Service]] = {
    "kafka": Kafka,
    "mongo": Mongo,
    "mariadb": MariaDB,
    "redis": Redis,
    "smtp": Smtp,
}


@dataclass
class PlatformProc:
    proc: Proc
    argv: list[str]
    readiness: str
    # Settings of this instance only (OCPI_HUB_*), over the shared environment.
    env: dict[str, str]
    workers: int = 1  # API worker processes behind the one port
    index: int = 1  # instance of a scaled process (1: the first, named without suffix)


def instance_name(name: str, index: int) -> str:
    return name if index == 1 else f"{name}-{index}"


def instance_env(name: str, index: int) -> dict[str, str]:
    """What keeps instance `index` of a scaled process apart from the first:
    Faust's web port and local table state (same app id, same group)."""
    if name != "processors" or index == 1:
        return {}
    web_port = int(os.environ.get("OCPI_HUB_FAUST_WEB_PORT", "6066")) + index - 1
    return {
        "OCPI_HUB_FAUST_WEB_PORT": str(web_port),
        "OCPI_HUB_FAUST_DATADIR": f"data/faust-{index}/{{conf.name}}",
    }


def started_instances(name: str) -> list[int]:
    """Indexes > 1 of `name` that have a pidfile (started by an earlier `up --scale`)."""
    found = set()
    for pidfile in RUN.glob(f"{name}-*.pid"):
        # <name>-N.pid, or <name>-N.keeper.pid while it waits to be restarted.
        suffix = pidfile.stem.removesuffix(".keeper").removeprefix(f"{name}-")
        if suffix.isdigit() and int(suffix) > 1:
            found.add(int(suffix))
    return sorted(found)


def platform_procs(scale: int | None = None) -> list[PlatformProc]:
    """The platform's processes: `scale` instances of each scalable one (for
    `up`), or, with None, every instance that has a pidfile (for down, status)."""
    out = []
    for name, argv, readiness in PLATFORM_PROCESSES:
        resolved = [
            str(REPO / a) if i == 0 and "/" in a and not os.path.isabs(a) else a
            for i, a in enumerate(argv)
        ]
        if name == "api":
            workers = scale or 1
            out.append(
                PlatformProc(
                    Proc(name), [*resolved, "--workers", str(workers)], readiness, {}, workers
                )
            )
        elif name in SCALED_PROCESSES:
            indexes = range(1, scale + 1) if scale else [1, *started_instances(name)]
            for i in indexes:
                out.append(
                    PlatformProc(
                        Proc(instance_name(name, i)),
                        resolved,
                        readiness,
                        instance_env(name, i),
                        index=i,
                    )
                )
        else:
            out.append(PlatformProc(Proc(name), resolved, readiness, {}))
    return out


def api_workers(pid: int) -> list[int]:
    """The uvicorn worker processes of the API supervisor `pid`."""
    workers = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _proc_stat(int(entry.name))
            if (
                st
                and st[2] not in ("Z", "X")
                and int(st[3]) == pid
                and "multiprocessing.spawn" in proc_cmdline(int(entry.name))
            ):
                workers.append(int(entry.name))
    return sorted(workers)


# --------------------------------------------------------------------------- #
# env file
# --------------------------------------------------------------------------- #
def render_env(api_port: int) -> str:
    """services.env for the services that are running now (with their actual ports)."""
    lines = []
    for name in SERVICES:
        run = Proc(name).running(quiet=True)
        if run is not None and run.port:
            lines.append(ENV_LINES[name].format(port=run.port))
    lines.append(f"OCPI_HUB_API_PORT={api_port}")
    # A local platform's partners (a second platform, the tests' stubs) run
    # on this machine: let its calls reach loopback addresses (docs/adr/0039;
    # production keeps the default, public addresses only).
    lines.append("OCPI_HUB_URL_POLICY_ALLOW_PRIVATE=true")
    return "\n".join(lines) + "\n"


def read_env_file() -> dict[str, str]:
    env = {}
    for line in ENV_FILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            env[k.strip()] = v.strip()
    return env


# --------------------------------------------------------------------------- #
# Commands
# --------------------------------------------------------------------------- #
@contextlib.contextmanager
def locked() -> Iterator[None]:
    RUN.mkdir(parents=True, exist_ok=True)
    with open(RUN / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("another infra.py is running; waiting for it")
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def parse_only(raw: str | None) -> list[str]:
    if not raw:
        return list(SERVICES)
    names = [n.strip() for n in raw.split(",") if n.strip()]
    bad = [n for n in names if n not in SERVICES]
    if bad:
        raise InfraError(f"unknown service(s) {', '.join(bad)}; choose from {','.join(SERVICES)}")
    return [n for n in SERVICES if n in names]


# --------------------------------------------------------------------------- #
# Supervision (docs/adr/0030): one keeper process per platform process
# --------------------------------------------------------------------------- #
# A keeper is this script (`infra.py keep NAME --spec FILE`) left running in
# the background: it starts the process with the same pidfile, metadata and
# log as before, waits for it, and starts it again after it exits, with
# capped exponential backoff. What it saw is in data/run/NAME.supervision.json
# for `status`. `down` stops the keeper first and then the process, so
# nothing restarts what `down` stops.


def keeper_of(proc: Proc) -> Proc:
    return Proc(f"{proc.name}.keeper", match=f"keep {proc.name} --spec")


def spec_file(name: str) -> Path:
    return RUN / f"{name}.keep.json"


def supervision_file(name: str) -> Path:
    return RUN / f"{name}.supervision.json"


def read_supervision(name: str) -> dict:
    try:
        found = json.loads(supervision_file(name).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exit code unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def start_kept(
    proc: Proc,
    argv: list[str],
    port: int | None,
    env: dict[str, str],
    extra_meta: dict | None = None,
    timeout: float = 60.0,
) -> int:
    """Start `proc` under a keeper (which adopts it if it already runs);
    return the process's pid once it has its pidfile. Only the keeper writes
    and removes that pidfile, so this only reads it."""
    RUN.mkdir(parents=True, exist_ok=True)
    spec = {"argv": argv, "port": port, "extra_meta": extra_meta or {}, "match": proc.match}
    write_atomic(spec_file(proc.name), json.dumps(spec, indent=2) + "\n")
    keeper = keeper_of(proc)
    keeper.spawn(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "keep",
            proc.name,
            "--spec",
            str(spec_file(proc.name)),
        ],
        None,
        env=env,
    )
    deadline = time.monotonic() + timeout
    while (run := proc.running(quiet=True, forget=False)) is None:
        if keeper.exited() is not None:
            raise InfraError(
                f"the keeper of {proc.name} exited; last lines of {rel(keeper.log)}:\n"
                f"{tail(keeper.log)}"
            )
        if time.monotonic() > deadline:
            raise InfraError(
                f"{proc.name} was not started within {timeout:.0f}s; last lines of "
                f"{rel(keeper.log)}:\n{tail(keeper.log)}\nand of {rel(proc.log)}:\n"
                f"{tail(proc.log)}"
            )
        time.sleep(0.05)
    return run.pid


def stop_kept(proc: Proc) -> bool:
    """Stop the keeper (so nothing restarts it), then the process."""
    stopped = keeper_of(proc).stop(timeout=10)
    return proc.stop() or stopped


def cmd_keep(args: argparse.Namespace) -> None:
    """Run as a keeper: start the process, and again whenever it exits."""
    name = args.name
    spec = json.loads(Path(args.spec).read_text())
    proc = Proc(name, match=spec.get("match"))
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    state: dict = {
        "keeper_pid": os.getpid(),
        "restarts": 0,
        "last_exit": None,
        "last_exit_at": None,
        "restart_at": None,
        "pid": None,
    }

    def save(**changes: object) -> None:
        state.update(changes)
        write_atomic(supervision_file(name), json.dumps(state, indent=2) + "\n")

    delay = RESTART_INITIAL_S
    while not stopping:
        started = time.monotonic()
        run = proc.running(quiet=True)
        code: int | None = None
        if run is None:
            pid = proc.spawn(
                spec["argv"],
                spec.get("port"),
                env=dict(os.environ),
                extra_meta=spec.get("extra_meta"),
            )
            say(f"{name}: started pid {pid}")
            save(pid=pid, restart_at=None)
            assert proc.popen is not None
            while not stopping and (code := proc.popen.poll()) is None:
                time.sleep(KEEPER_POLL_S)
        else:
            # Started before this keeper (by an older `up`): watch it; its
            # exit code is its parent's to read, not ours.
            say(f"{name}: watching pid {run.pid}, started before this keeper")
            save(pid=run.pid, restart_at=None)
            while not stopping and proc.running(quiet=True) is not None:
                time.sleep(KEEPER_POLL_S)
        if stopping:
            break
        lasted = time.monotonic() - started
        if lasted >= RESTART_RESET_S:
            delay = RESTART_INITIAL_S
        proc._forget()
        save(
            pid=None,
            last_exit=code,
            last_exit_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            restart_at=time.time() + delay,
        )
        say(f"{name}: {describe_exit(code)} after {lasted:.1f}s; starting again in {delay:g}s")
        until = time.monotonic() + delay
        while not stopping and time.monotonic() < until:
            time.sleep(min(KEEPER_POLL_S, max(until - time.monotonic(), 0)))
        if stopping:
            break
        save(restarts=state["restarts"] + 1)
        delay = min(delay * 2, RESTART_MAX_S)
    save(keeper_pid=None, restart_at=None)
    say(f"{name}: keeper stopped (`down` stops the process itself)")


def supervision_note(proc: Proc, running: bool) -> str:
    """What `status` adds to a platform process's line."""
    keeper = keeper_of(proc).running(quiet=True)
    seen = read_supervision(proc.name) if keeper is not None else {}
    if keeper is None:
        return "  unsupervised (`make up` supervises it)" if running else ""
    parts = [f"restarts {seen.get('restarts', 0)}"]
    if seen.get("last_exit_at"):
        parts.append(f"last exit: {describe_exit(seen.get('last_exit'))} at {seen['last_exit_at']}")
    if not running and seen.get("restart_at"):
        parts.insert(0, f"restarting in {max(seen['restart_at'] - time.time(), 0):.0f}s")
    return "  " + ", ".join(parts)


# The dashboard's map library (docs/adr/0034): never copied into the
# repository, fetched once into the cache as the npm registry publishes it,
# and used only if its bytes match the integrity npm states for it.
LEAFLET_VERSION = "1.9.4"
LEAFLET_URL = f"https://registry.npmjs.org/leaflet/-/leaflet-{LEAFLET_VERSION}.tgz"
LEAFLET_INTEGRITY = (
    "sha512-"
    "nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA=="
)
# What we keep, and where each is in the package.
LEAFLET_FILES = {
    "leaflet.js": "package/dist/leaflet.js",
    "leaflet.css": "package/dist/leaflet.css",
    "LICENSE": "package/LICENSE",
}


def integrity_of(data: bytes) -> str:
    """The Subresource Integrity string npm publishes: sha512, base64."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fetch_map_assets(cache: Path | None = None) -> Path:
    """Leaflet's dist files in ``{cache}/leaflet-{version}`` (what the API
    serves under /admin/map/), downloaded and checked once; a tarball whose
    hash differs is refused and nothing is written."""
    home = (cache or CACHE) / f"leaflet-{LEAFLET_VERSION}"
    if (home / ".complete").exists():
        return home
    try:
        with urllib.request.urlopen(LEAFLET_URL, timeout=60) as resp:
            data = resp.read()
    except (urllib.error.URLError, OSError) as e:
        raise InfraError(f"downloading {LEAFLET_URL} failed: {e}") from e
    if integrity_of(data) != LEAFLET_INTEGRITY:
        raise InfraError(f"{LEAFLET_URL}: the download does not match its pinned integrity")
    tmp = home.with_name(home.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        # Only the named files, by name: no path from the archive is trusted.
        for name in LEAFLET_FILES:
            member = tar.getmember(
                f"package/dist/{name}" if name != "LICENSE" else "package/LICENSE"
            )
            extracted = tar.extractfile(member)
            assert extracted is not None
            (tmp / name).write_bytes(extracted.read())
    (tmp / ".complete").write_text(LEAFLET_INTEGRITY + "\n")
    shutil.rmtree(home, ignore_errors=True)
    os.replace(tmp, home)
    say(f"map: Leaflet {LEAFLET_VERSION} ready in {rel(home)}")
    return home


def cmd_map_assets(args: argparse.Namespace) -> None:
    fetch_map_assets()


def cmd_up(args: argparse.Namespace) -> None:
    wanted = parse_only(args.only)
    t_start = time.monotonic()
    with locked():
        for d in (CACHE, RUN, LOGS):
            d.mkdir(parents=True, exist_ok=True)
        services = [SERVICE_CLASSES[n]() for n in wanted]
        picker = PortPicker()
        to_start: list[Service] = []
        for svc in services:
            run = svc.proc.running()
            if run is None:
                to_start.append(svc)
                continue
            svc.ports = run.meta.get("ports") or {svc.port_keys[0]: run.port}
            picker.claimed.update(svc.ports.values())
            say(f"{svc.name}: already running (pid {run.pid}, port {run.port})")
            for key in svc.port_keys:
                env_port = picker.env_port(key)
                if env_port is not None and env_port != svc.ports.get(key):
                    say(
                        f"{svc.name}: note: {PORT_SPECS[key][0]}={env_port} but the running "
                        f"instance uses {svc.ports.get(key)}; `down` then `up` to move it"
                    )

        # 1. tools (missing system packages come in one apt-get call)
        needy = [svc for svc in to_start if svc.packages_needed()]
        packages = [p for svc in needy for p in svc.packages_needed()]
        why = [PRETTY[svc.name] for svc in needy]
        # The dashboard's browser test (tests/e2e/test_dashboard.py) drives
        # Debian's chromium; `make test` runs `make up` first, so a bare CI
        # machine gets it here. Never a browser downloaded by Playwright.
        if args.with_platform and not which("chromium"):
            packages.append("chromium")
            why.append("Chromium (the dashboard's browser test)")
        # Invoice PDFs (docs/adr/0037) embed Debian's DejaVu fonts, and the
        # billing tests read the PDFs back with poppler's pdftotext.
        if args.with_platform and not Path(DEJAVU_SANS).is_file():
            packages.append("fonts-dejavu-core")
            why.append("the DejaVu fonts (invoice PDFs)")
        if args.with_platform and not which("pdftotext"):
            packages.append("poppler-utils")
            why.append("pdftotext (the invoice PDFs' tests)")
        if packages:
            Apt.install(packages, " and ".join(why))
        if args.with_platform:
            fetch_map_assets()
        for svc in to_start:
            svc.check_tools()

        # 2. ports: fixed ones first, so that a fallback never takes one of them
        for svc in sorted(to_start, key=lambda s: all(PORT_SPECS[k][2] for k in s.port_keys)):
            for key in svc.port_keys:
                svc.ports[key] = picker.pick(key, PRETTY.get(key, key))
        platform = platform_procs(args.scale) if args.with_platform else []
        # Each process runs under its keeper; one without (not started, or
        # started by an older `up`) gets one, which adopts it if it runs.
        platform_to_start = [pp for pp in platform if keeper_of(pp.proc).running() is None]
        if platform:
            note_other_scale(platform, args.scale)
        api_run = Proc("api").running(quiet=True)
        if api_run is not None and api_run.port:
            api_port = int(api_run.port)
        elif any(pp.proc.name == "api" for pp in platform_to_start):
            api_port = picker.pick("api", "the API")
        else:
            api_port = picker.preferred("api")
            if not port_free(api_port):
                say(
                    f"warning: API port {api_port} is in use "
                    f"({port_owner(api_port) or 'owner unknown'}); "
                    f"set {PORT_SPECS['api'][0]} before starting the API"
                )

        # 3. prepare and start what is not running, then wait for every service
        current: Service | None = None
        try:
            for svc in to_start:
                current = svc
                svc.prepare()
                svc.start()
                save_ports(svc.ports)
            for svc in services:
                current = svc
                took = wait_healthy(svc.proc, svc.health)
                svc.after_healthy()
                say(f"{svc.name}: healthy ({took:.1f}s)")
        except InfraError:
            if current is not None and current in to_start:
                current.proc.stop()  # leave no half-started instance behind
            others = [s.name for s in services if s is not current and s.proc.running(quiet=True)]
            if others:
                say(f"still running: {', '.join(others)} (`down` stops them)")
            raise
        save_ports({"api": api_port})
        write_atomic(ENV_FILE, render_env(api_port))
        say(f"wrote {rel(ENV_FILE)}")

        # 4. platform processes: the first instances, then the others
        if platform_to_start:
            start_platform([pp for pp in platform_to_start if pp.index == 1], api_port)
            start_platform([pp for pp in platform_to_start if pp.index > 1], api_port)
        elif platform:
            say("platform processes already running")
    say(f"up: done in {time.monotonic() - t_start:.1f}s")


def note_other_scale(platform: list[PlatformProc], scale: int) -> None:
    """`up` only adds what is missing: say so when the running platform was
    started with another scale (it is left as it is)."""
    for pp in platform:
        run = pp.proc.running(quiet=True)
        if pp.proc.name == "api" and run is not None:
            argv = run.meta.get("argv") or []
            running = int(argv[argv.index("--workers") + 1]) if "--workers" in argv else 1
            if running != pp.workers:
                say(
                    f"api: running with {running} worker(s), --scale asks {pp.workers}; "
                    "`down` then `up` to change"
                )
    for name in SCALED_PROCESSES:
        extra = [i for i in started_instances(name) if i > scale]
        if extra and any(Proc(instance_name(name, i)).running(quiet=True) for i in extra):
            say(f"{name}: instances beyond --scale {scale} keep running (`down` stops them)")


def start_platform(procs: list[PlatformProc], api_port: int) -> None:
    for pp in procs:
        if not Path(pp.argv[0]).exists():
            raise InfraError(
                f"{rel(Path(pp.argv[0]))} not found (platform process {pp.proc.name}): "
                "run `make venv` first"
            )
    env = dict(os.environ)
    env.update(read_env_file())
    env["OCPI_HUB_API_PORT"] = str(api_port)
    gateway_port = int(env.get(PORT_SPECS["gateway"][0], PORT_SPECS["gateway"][1]))
    for pp in procs:
        port = {"api": api_port, "gateway": gateway_port}.get(pp.proc.name)
        extra = {"workers": pp.workers} if pp.proc.name == "api" else {}
        pid = start_kept(pp.proc, pp.argv, port, env={**env, **pp.env}, extra_meta=extra)
        say(f"{pp.proc.name}: pid {pid}, supervised (log: {rel(pp.proc.log)})")
    t0 = time.monotonic()
    for pp in procs:
        proc, readiness = pp.proc, pp.readiness
        try:
            if readiness.startswith("http:"):
                url = f"http://127.0.0.1:{api_port}{readiness[5:]}"
                wait_healthy(proc, lambda u=url, pp=pp: api_ready(pp, u))
            elif readiness.startswith("tcp:"):
                wait_healthy(proc, lambda: tcp_probe(gateway_port))
            elif readiness.startswith("log:"):
                wait_healthy(
                    proc,
                    lambda p=proc, s=readiness[4:]: log_says(p.log, s),
                    timeout=READY_TIMEOUT.get(re.sub(r"-\d+$", "", proc.name), HEALTH_TIMEOUT),
                )
            else:
                wait_healthy(proc, lambda: (time.monotonic() - t0 >= ALIVE_GRACE, "still starting"))
        except InfraError:
            stop_kept(proc)
            raise
        say(f"{proc.name}: ready ({time.monotonic() - t0:.1f}s after start)")


def log_says(log: Path, text: str) -> tuple[bool, str]:
    """Has the process written `text` to its log since infra.py started it?"""
    try:
        with open(log, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 1024 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError as e:
        return False, str(e)
    marker = data.rfind("\n===== ")
    since_start = data[marker:] if marker >= 0 else data
    return text in since_start, f"no {text!r} in the log yet"


def api_ready(pp: PlatformProc, url: str) -> tuple[bool, str]:
    """/readyz answers 200 and, with workers, every worker is up: the port
    answers as soon as the first of them serves."""
    ok, said = http_probe(url)
    if not ok or pp.workers == 1:
        return ok, said
    run = pp.proc.running(quiet=True)
    alive = len(api_workers(run.pid)) if run else 0
    return alive >= pp.workers, f"{said}, {alive} of {pp.workers} workers"


def cmd_down(args: argparse.Namespace) -> None:
    wanted = parse_only(args.only) if args.only else list(SERVICES)
    with locked():
        stopped = 0
        if not args.only:
            for pp in reversed(platform_procs()):
                stopped += stop_kept(pp.proc)
        for name in reversed(wanted):
            stopped += Proc(name).stop()
    say(f"down: stopped {stopped} process(es)" if stopped else "down: nothing was running")


def cmd_status(args: argparse.Namespace) -> None:
    # A reader: it never removes a pidfile it finds stale (a keeper may be
    # writing the new one for a process it just restarted).
    probes = {
        "kafka": kafka_probe,
        "mongo": mongo_probe,
        "mariadb": mysql_probe,
        "redis": redis_probe,
        "smtp": smtp_probe,
    }
    for name in SERVICES:
        run = Proc(name).running(quiet=True, forget=False)
        if run is None:
            print(f"{name:<14} stopped")
            continue
        extra = ""
        ports = run.meta.get("ports") or {}
        if name == "kafka" and "kafka_controller" in ports:
            extra = f" (controller {ports['kafka_controller']})"
        health = ""
        if name in probes and run.port:
            try:
                ok, _ = probes[name](int(run.port), timeout=2.0)
                health = "  healthy" if ok else "  not ready"
            except (OSError, struct.error, ValueError, IndexError):
                health = "  not answering"
        print(f"{name:<14} running  pid {run.pid:<7} port {run.port}{extra}{health}")
    for pp in platform_procs():
        proc = pp.proc
        run = proc.running(quiet=True, forget=False)
        note = supervision_note(proc, run is not None)
        if run is None:
            print(f"{proc.name:<14} stopped{note}")
        else:
            port = f" port {run.port}" if run.port else ""
            workers = ""
            if proc.name == "api" and (pids := api_workers(run.pid)):
                workers = f"  workers {len(pids)} (pids {' '.join(map(str, pids))})"
            print(f"{proc.name:<14} running  pid {run.pid:<7}{port}{workers}{note}".rstrip())


def cmd_env(args: argparse.Namespace) -> None:
    if not ENV_FILE.exists():
        raise InfraError(
            f"{rel(ENV_FILE)} does not exist: run `python3 deploy/local/infra.py up` first"
        )
    sys.stdout.write(ENV_FILE.read_text())


def cmd_clean(args: argparse.Namespace) -> None:
    args.only = None
    cmd_down(args)

    def remove(path: Path) -> None:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()

    with locked():
        for child in sorted(DATA.iterdir()) if DATA.exists() else []:
            if child.name == "cache":
                continue
            say(f"clean: removing {rel(child)}")
            if child == RUN:  # keep the lock file we are holding
                for f in RUN.iterdir():
                    if f.name != ".lock":
                        remove(f)
            else:
                remove(child)
    say("clean: done (data/cache kept)")


def cmd_bench_tools(args: argparse.Namespace) -> None:
    """The load generator the benchmarks drive HTTP with (wrk: C, so it does
    not compete with the platform for the interpreter's time)."""
    if shutil.which("wrk"):
        return
    with locked():
        Apt.install(["wrk"], "wrk (the benchmarks' HTTP load generator)")


def scale_arg(raw: str) -> int:
    if not raw.strip().isdigit() or not 1 <= int(raw) <= MAX_SCALE:
        raise argparse.ArgumentTypeError(f"{raw!r}: a whole number from 1 to {MAX_SCALE}")
    return int(raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="infra.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start services (idempotent) and wait until healthy")
    p_up.add_argument("--only", help=f"comma-separated subset of {','.join(SERVICES)}")
    p_up.add_argument(
        "--with-platform",
        action="store_true",
        help="also start " + ", ".join(n for n, _, _ in PLATFORM_PROCESSES),
    )
    p_up.add_argument(
        "--scale",
        type=scale_arg,
        default=os.environ.get("OCPI_HUB_SCALE", "1"),
        help="with --with-platform: API workers and instances of "
        f"{', '.join(SCALED_PROCESSES)} (default: OCPI_HUB_SCALE or 1)",
    )
    p_down = sub.add_parser("down", help="stop what `up` started (data is kept)")
    p_down.add_argument(
        "--only", help="stop only these services (platform processes are left alone)"
    )
    sub.add_parser("status", help="one line per service/process")
    sub.add_parser("env", help=f"print {rel(ENV_FILE)}")
    sub.add_parser("clean", help="down, then delete everything under data/ except data/cache")
    sub.add_parser("bench-tools", help="install the benchmarks' load generator (wrk) if missing")
    sub.add_parser("map-assets", help="fetch the dashboard's map library (Leaflet) into the cache")
    p_keep = sub.add_parser("keep", help="(internal) keep one platform process running")
    p_keep.add_argument("name")
    p_keep.add_argument("--spec", required=True)
    args = parser.parse_args(argv)
    handler = {
        "up": cmd_up,
        "down": cmd_down,
        "status": cmd_status,
        "env": cmd_env,
        "clean": cmd_clean,
        "bench-tools": cmd_bench_tools,
        "map-assets": cmd_map_assets,
        "keep": cmd_keep,
    }
    try:
        handler[args.command](args)
    except InfraError as e:
        print(f"infra: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "infra: interrupted; processes already started keep running (`down` stops them)",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
