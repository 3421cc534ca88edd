#!/usr/bin/env python3
"""Candidate document stores for `make up` and CI, side by side (issue 11).

Builds and starts, on loopback ports of their own, each MongoDB wire-protocol
server that a newcomer can install from our registries, so that
``python -m bench.docstore`` can measure them in one run (docs/adr/0023):

    secantusdb           the pinned SecantusDB of the venv, a private instance
                         (not the one `make up` runs, which others are using),
                         started as `make up` starts it: through our launcher
                         (deploy/local/secantusd.py, docs/adr/0052)
    secantusdb-plain     the same SecantusDB started by its own command
    ferretdb-sqlite      FerretDB v1 built from the Go module proxy, SQLite backend
    ferretdb-postgresql  the same binary on a private PostgreSQL cluster
    postgresql           that cluster (Debian's PostgreSQL, started as the
                         `postgres` user when we are root: it refuses root)
    mongo-java-server    mongo-java-server (Maven Central) on its H2 backend,
                         started by deploy/local/mongo-java-server/LocalMongoServer.java

Usage (paths resolve against the repository root):

    python3 deploy/local/docstores.py build              # FerretDB binary, Java jars (cached)
    python3 deploy/local/docstores.py up [--only NAMES]  # start, wait until healthy
    python3 deploy/local/docstores.py urls               # --url NAME=... for bench.docstore
    python3 deploy/local/docstores.py status
    python3 deploy/local/docstores.py down [--only NAMES]

State: data under data/docstores/<name>/, pidfiles and stores.json under
data/run/docstores/ (out of `infra.py`'s sight: its `down` and the
benchmarks' CPU meters ignore them), logs data/logs/docstore-<name>.log,
the FerretDB binary data/cache/tools/ferretdb-<version> and the
mongo-java-server jars data/cache/mongo-java-server-<version>/ (kept by `clean`).
Run `down` here before `infra.py clean`, which deletes data/ but stops only
its own services. Standard library only, like infra.py, whose process
handling (pidfiles checked by start time and command line) is reused.
"""

# ruff: noqa: S603
# (S603: starting local programs is this script's whole job.)
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import infra  # the sibling script (deploy/local is no package)
from infra import (
    CACHE,
    DATA,
    IS_ROOT,
    LOGS,
    REPO,
    RUN,
    InfraError,
    Proc,
    logged_run,
    maven_jars,
    mongo_probe,
    port_free,
    rel,
    tail,
    wait_healthy,
    write_atomic,
)

# FerretDB v1 is the last line with an SQLite backend and without the
# DocumentDB PostgreSQL extension (v2 needs that extension, which Debian
# does not package). The version is what go-partial.tsv lists as fetched.
FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_VERSION = "v1.24.2"
FERRETDB_BINARY = CACHE / "tools" / f"ferretdb-{FERRETDB_VERSION}"

MJS_DIR = Path(__file__).resolve().parent / "mongo-java-server"
MJS_POM = MJS_DIR / "pom.xml"
MJS_VERSION = re.search(
    r"<mongo-java-server\.version>([^<]+)<", MJS_POM.read_text(encoding="utf-8")
).group(1)  # type: ignore[union-attr]
MJS_LIBS = CACHE / f"mongo-java-server-{MJS_VERSION}" / "libs"

STATE = DATA / "docstores"
RUNDIR = RUN / "docstores"
STORES_FILE = RUNDIR / "stores.json"

# name -> preferred port; the next free one (up to +20) is used when taken.
# In start order: a helper before the store that needs it.
DEFAULT_PORTS = {
    "secantusdb": 27117,
    "ferretdb-sqlite": 27118,
    "postgresql": 55432,
    "ferretdb-postgresql": 27119,
    "mongo-java-server": 27120,
    "secantusdb-plain": 27121,
}
NAMES = tuple(DEFAULT_PORTS)
# Which helper processes a store needs (started first, stopped last).
NEEDS = {"ferretdb-postgresql": ("postgresql",)}
PG_DATABASE = "ferretdb"
# FerretDB v1 keeps every operation's query open until the whole `update`
# command ends (a `defer` inside its per-operation loop), each holding a
# pooled connection: with its default pool of 50, a bulk of more than ~50
# replaces of existing documents waits forever for a connection (seen here:
# 50 idle connections, the command hung). The projection writes batches of up
# to 1,000 (OCPI_HUB_PROJECTION_BATCH_SIZE), so the pool and the cluster are
# sized above that; the figures are for this configuration.
FERRETDB_PG_POOL = 1100
PG_MAX_CONNECTIONS = 1150


def say(msg: str) -> None:
    print(f"docstores: {msg}", file=sys.stderr, flush=True)


def _proc(name: str) -> Proc:
    """An infra.Proc whose pidfile, metadata and log are ours, not infra.py's."""
    proc = Proc(f"docstore-{name}")
    proc.pidfile = RUNDIR / f"{name}.pid"
    proc.metafile = RUNDIR / f"{name}.meta.json"
    proc.log = LOGS / f"docstore-{name}.log"
    return proc


# --------------------------------------------------------------------------- #
# FerretDB: built from the Go module proxy, once
# --------------------------------------------------------------------------- #
def build_ferretdb() -> Path:
    """The FerretDB binary, built on first use and cached.

    A plain `go install` of the command builds, but the binary panics at
    start-up: FerretDB embeds build/version/version.txt, which its release
    tooling generates from `git describe` and which the module zip lacks. The
    module zip is the tagged source, so we write the tag it was fetched by
    into that file (what `git describe` prints for a clean tagged tree) and
    build the command from a writable copy of the module.
    """
    if FERRETDB_BINARY.is_file() and os.access(FERRETDB_BINARY, os.X_OK):
        return FERRETDB_BINARY
    go = shutil.which("go")
    if go is None:
        raise InfraError("Go is needed to build FerretDB (the polyglot machines have it)")
    log = LOGS / "docstore-build.log"
    env = dict(os.environ, GOFLAGS="-buildvcs=false", GOTOOLCHAIN="local", CGO_ENABLED="0")
    say(f"building FerretDB {FERRETDB_VERSION} from the Go module proxy (log: {rel(log)})")
    t0 = time.monotonic()
    out = subprocess.run(
        [go, "mod", "download", "-json", f"{FERRETDB_MODULE}@{FERRETDB_VERSION}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    if out.returncode != 0:
        raise InfraError(f"go mod download failed:\n{out.stdout}{out.stderr}")
    source = Path(json.loads(out.stdout)["Dir"])
    FERRETDB_BINARY.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ferretdb-build-") as tmp:
        work = Path(tmp) / "src"
        shutil.copytree(source, work)  # the module cache is read-only
        for path in work.rglob("*"):
            path.chmod(path.stat().st_mode | 0o200)
        version_dir = work / "build" / "version"
        (version_dir / "version.txt").write_text(FERRETDB_VERSION + "\n")
        (version_dir / "package.txt").write_text("ocpi-hub-local\n")
        built = Path(tmp) / "ferretdb"
        rc = logged_run(
            [go, "build", "-trimpath", "-o", str(built), "./cmd/ferretdb"],
            log,
            1800,
            cwd=work,
            env=env,
        )
        if rc != 0:
            raise InfraError(f"building FerretDB failed (exit {rc}); last lines:\n{tail(log)}")
        check = subprocess.run(
            [str(built), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
        if check.returncode != 0 or f"version: {FERRETDB_VERSION}" not in check.stdout:
            raise InfraError(f"the built FerretDB does not run:\n{check.stdout}{check.stderr}")
        shutil.move(str(built), FERRETDB_BINARY)
    say(
        f"FerretDB {FERRETDB_VERSION} built in {time.monotonic() - t0:.0f}s: {rel(FERRETDB_BINARY)}"
    )
    return FERRETDB_BINARY


def fetch_mongo_java_server() -> Path:
    """mongo-java-server's jars (Maven Central), downloaded on first use and cached."""
    if MJS_LIBS.is_dir() and any(MJS_LIBS.glob("mongo-java-server-h2-backend-*.jar")):
        return MJS_LIBS
    if shutil.which("mvn") is None:
        raise InfraError(
            "Maven is needed once to download mongo-java-server (apt-get install maven)"
        )
    log = LOGS / "docstore-build.log"
    partial = MJS_LIBS.with_name("libs.partial")
    shutil.rmtree(partial, ignore_errors=True)
    say(f"downloading mongo-java-server {MJS_VERSION} with Maven (log: {rel(log)})")
    rc = maven_jars(MJS_POM, CACHE / "m2", partial, log)
    if rc != 0 or not any(partial.glob("mongo-java-server-h2-backend-*.jar")):
        raise InfraError(
            f"downloading mongo-java-server failed (exit {rc}); last lines:\n{tail(log)}"
        )
    os.replace(partial, MJS_LIBS)
    return MJS_LIBS


# --------------------------------------------------------------------------- #
# PostgreSQL: a private cluster for FerretDB's PostgreSQL backend
# --------------------------------------------------------------------------- #
def pg_bindir() -> Path:
    """Debian's PostgreSQL server programs (installed with apt when missing)."""
    for attempt in range(2):
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
        if found:
            return found[-1].parent
        if attempt == 0:
            infra.Apt.install(["postgresql"], "PostgreSQL (for FerretDB's PostgreSQL backend)")
    raise InfraError("PostgreSQL's server programs not found under /usr/lib/postgresql")


def as_pg_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as Debian's `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *argv] if IS_ROOT else argv


def prepare_postgresql(datadir: Path) -> None:
    if (datadir / "PG_VERSION").exists():
        return
    bindir = pg_bindir()
    datadir.mkdir(parents=True, exist_ok=True)
    if IS_ROOT:
        shutil.chown(datadir, "postgres", "postgres")
    datadir.chmod(0o700)
    log = LOGS / "docstore-postgresql.log"
    say(f"postgresql: initdb {rel(datadir)}")
    # trust on loopback only: a throw-away local cluster, like infra's MariaDB.
    rc = logged_run(
        as_pg_user(
            [
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        ),
        log,
        300,
    )
    if rc != 0:
        raise InfraError(f"initdb failed (exit {rc}); last lines of {rel(log)}:\n{tail(log)}")


def create_pg_database(port: int) -> None:
    bindir = pg_bindir()
    log = LOGS / "docstore-postgresql.log"
    psql = as_pg_user(
        [
            str(bindir / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-tAc",
        ]
    )
    out = subprocess.run(
        # S608: a constant of this file, not input.
        [*psql, f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'"],  # noqa: S608
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if out.stdout.strip() == "1":
        return
    rc = logged_run([*psql, f"CREATE DATABASE {PG_DATABASE}"], log, 60)
    if rc != 0:
        raise InfraError(f"CREATE DATABASE failed; last lines of {rel(log)}:\n{tail(log)}")


def pg_probe(port: int) -> tuple[bool, str]:
    out = subprocess.run(
        [str(pg_bindir() / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return out.returncode == 0, out.stdout.strip()


# --------------------------------------------------------------------------- #
# The stores
# --------------------------------------------------------------------------- #
@dataclass
class Store:
    name: str
    datadir: Path = field(init=False)
    port: int = 0
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.datadir = STATE / self.name
        self.proc = _proc(self.name)

    @property
    def speaks_mongo(self) -> bool:
        return self.name != "postgresql"

    def prepare(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        if self.name.startswith("ferretdb"):
            build_ferretdb()
        if self.name == "mongo-java-server":
            fetch_mongo_java_server()
        if self.name.startswith("secantusdb"):
            write_atomic(
                self.datadir.parent / "secantusd.toml",
                "# Generated by deploy/local/docstores.py: settings come from argv.\n",
            )
        if self.name == "postgresql":
            prepare_postgresql(self.datadir / "data")

    def argv(self) -> list[str]:
        port = str(self.port)
        if self.name.startswith("secantusdb"):
            binary = REPO / ".venv" / "bin" / "secantusd-py"
            if not binary.is_file():
                raise InfraError(f"{rel(binary)} not found: run `make venv` first")
            launcher = [str(binary.with_name("python")), str(REPO / "deploy/local/secantusd.py")]
            return [
                *([str(binary)] if self.name == "secantusdb-plain" else launcher),
                "--config",
                str(self.datadir.parent / "secantusd.toml"),
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--storage-path",
                str(self.datadir),
                "--standalone",  # as `make up` runs it (infra.py): no oplog
            ]
        if self.name == "mongo-java-server":
            java = shutil.which("java")
            if java is None:
                raise InfraError("Java 17+ is needed for mongo-java-server (as for Kafka)")
            return [
                java,
                "-Xmx1g",
                "-cp",
                f"{MJS_LIBS}/*",
                str(MJS_DIR / "LocalMongoServer.java"),
                "127.0.0.1",
                port,
                str(self.datadir / "store.mv.db"),
            ]
        if self.name == "postgresql":
            # Defaults otherwise (fsync and synchronous_commit on): the
            # figures are those of a stock cluster, but for its connections.
            return as_pg_user(
                [
                    str(pg_bindir() / "postgres"),
                    "-D",
                    str(self.datadir / "data"),
                    "-p",
                    port,
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.datadir / 'data'}",
                    "-c",
                    f"max_connections={PG_MAX_CONNECTIONS}",
                ]
            )
        backend = self.name.removeprefix("ferretdb-")
        common = [
            str(FERRETDB_BINARY),
            f"--listen-addr=127.0.0.1:{port}",
            "--debug-addr=-",  # no metrics/pprof listener
            "--telemetry=disable",  # no reports to the vendor (no network here anyway)
            f"--state-dir={self.datadir}",
            "--log-level=warn",
        ]
        if backend == "sqlite":
            return [*common, "--handler=sqlite", f"--sqlite-url=file:{self.datadir}/"]
        pg_port = self.ports["postgresql"]
        return [
            *common,
            "--handler=postgresql",
            f"--postgresql-url=postgres://postgres@127.0.0.1:{pg_port}/{PG_DATABASE}"
            f"?pool_max_conns={FERRETDB_PG_POOL}",
        ]

    def health(self) -> Callable[[], tuple[bool, str]]:
        if self.name == "postgresql":
            return lambda: pg_probe(self.port)
        return lambda: mongo_probe(self.port)

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"


def load_stores_file() -> dict[str, dict[str, object]]:
    try:
        data = json.loads(STORES_FILE.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def pick_port(name: str, claimed: set[int]) -> int:
    base = int(
        os.environ.get(f"OCPI_HUB_DOCSTORE_PORT_{name.upper().replace('-', '_')}", 0)
        or DEFAULT_PORTS[name]
    )
    for port in range(base, base + 21):
        if port not in claimed and port_free(port):
            claimed.add(port)
            return port
    raise InfraError(f"{name}: no free port in {base}..{base + 20}")


def expand(names: list[str]) -> list[str]:
    """The stores asked for plus what they need, in start order."""
    wanted = set(names)
    for name in names:
        wanted.update(NEEDS.get(name, ()))
    return [n for n in NAMES if n in wanted]


def parse_only(raw: str | None, default: tuple[str, ...] = NAMES) -> list[str]:
    names = [n.strip() for n in (raw or "").split(",") if n.strip()] or list(default)
    bad = [n for n in names if n not in NAMES]
    if bad:
        raise InfraError(f"unknown store(s) {', '.join(bad)}; choose from {','.join(NAMES)}")
    return names


def cmd_build(args: argparse.Namespace) -> None:
    print(build_ferretdb())
    print(fetch_mongo_java_server())


def cmd_up(args: argparse.Namespace) -> None:
    RUNDIR.mkdir(parents=True, exist_ok=True)
    record = load_stores_file()
    claimed: set[int] = set()
    ports: dict[str, int] = {}
    for name in expand(parse_only(args.only)):
        store = Store(name)
        running = store.proc.running()
        if running is not None and running.port:
            store.port = int(running.port)
            claimed.add(store.port)
            say(f"{name}: already running (pid {running.pid}, port {store.port})")
        else:
            store.port = pick_port(name, claimed)
            store.ports = ports
            store.prepare()
            store.datadir.mkdir(parents=True, exist_ok=True)
            pid = store.proc.spawn(store.argv(), store.port)
            took = wait_healthy(store.proc, store.health(), timeout=120)
            say(f"{name}: pid {pid} on 127.0.0.1:{store.port}, healthy in {took:.1f}s")
        ports[name] = store.port
        if name == "postgresql":
            create_pg_database(store.port)
        record[name] = {
            "port": store.port,
            "url": store.url if store.speaks_mongo else None,
            # Process groups whose CPU is this store's (bench.docstore).
            "groups": [name, *NEEDS.get(name, ())],
        }
        write_atomic(STORES_FILE, json.dumps(record, indent=2, sort_keys=True) + "\n")


def cmd_down(args: argparse.Namespace) -> None:
    record = load_stores_file()
    # Dependants first: FerretDB before the PostgreSQL it writes to.
    for name in reversed(expand(parse_only(args.only))):
        if _proc(name).stop():
            say(f"{name}: stopped")
        record.pop(name, None)
    if RUNDIR.exists():
        write_atomic(STORES_FILE, json.dumps(record, indent=2, sort_keys=True) + "\n")


def cmd_status(args: argparse.Namespace) -> None:
    for name in NAMES:
        run = _proc(name).running(quiet=True)
        print(f"{name:<20} " + (f"running  pid {run.pid:<7} port {run.port}" if run else "stopped"))


def cmd_urls(args: argparse.Namespace) -> None:
    """The running stores as bench.docstore arguments."""
    for name, entry in load_stores_file().items():
        if entry.get("url") and _proc(name).running(quiet=True):
            print(f"--url {name}={entry['url']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="docstores.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build FerretDB once (cached) and print its path")
    p_up = sub.add_parser("up", help="start the stores (idempotent) and wait until healthy")
    p_up.add_argument("--only", help=f"comma-separated subset of {','.join(NAMES)}")
    p_down = sub.add_parser("down", help="stop what `up` started (data is kept)")
    p_down.add_argument("--only", help="stop only these")
    sub.add_parser("status", help="one line per store")
    sub.add_parser("urls", help="the running stores as `--url NAME=URL` for bench.docstore")
    args = parser.parse_args(argv)
    handler = {
        "build": cmd_build,
        "up": cmd_up,
        "down": cmd_down,
        "status": cmd_status,
        "urls": cmd_urls,
    }
    try:
        handler[args.command](args)
    except InfraError as e:
        print(f"docstores: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
