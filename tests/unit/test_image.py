"""The container image and the compose topology, checked without a Docker
engine: hadolint parses and lints the Dockerfile for real; the rest reads the
Dockerfile, .dockerignore, compose.yaml, the Makefile and the CLI together so
they cannot drift apart (`make compose-check` validates compose.yaml itself)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from ocpi_hub.cli import app as cli

ROOT = Path(__file__).resolve().parents[2]
CLI_COMMANDS = {c.name or c.callback.__name__ for c in cli.registered_commands if c.callback}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        out.append((keyword.upper(), " ".join(args.split())))
        pending = ""
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last_from:]


def exec_form(args: str) -> list[str]:
    value = json.loads(args.split(" ", 3)[-1] if args.startswith("--") else args)
    assert isinstance(value, list)
    return [str(v) for v in value]


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def platform_services() -> dict[str, dict[str, Any]]:
    """Services that run an ocpi-hub process (from our image)."""
    return {
        name: svc
        for name, svc in compose()["services"].items()
        if svc.get("image", "").startswith("ocpi-hub:")
    }


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    done = subprocess.run(
        [str(hadolint), "--no-color", "--format", "json", "--failure-threshold", "style", "-"],
        input=(ROOT / "Dockerfile").read_text(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and json.loads(done.stdout) == [], done.stdout + done.stderr


def test_hadolint_rejects_a_broken_dockerfile() -> None:
    """So that the test above cannot pass by accident."""
    hadolint = Path(sys.executable).with_name("hadolint")
    done = subprocess.run(
        [str(hadolint), "--no-color", "-"],
        input="FROM python:3.11-slim\nUSR 10001\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0


def test_the_image_runs_as_a_non_root_user() -> None:
    users = [args for keyword, args in final_stage() if keyword == "USER"]
    assert users, "the final stage sets no USER"
    uid = users[-1].split(":")[0]
    # Numeric, so that a runtime's "run as non-root" check can verify it.
    assert uid.isdigit() and int(uid) != 0


def test_the_image_installs_the_lock_make_venv_uses() -> None:
    makefile = (ROOT / "Makefile").read_text()
    lock = re.search(r"^LOCK := (\S+)$", makefile, re.M)
    assert lock
    runs = " ".join(args for keyword, args in instructions() if keyword == "RUN")
    assert re.search(rf"pip install --require-hashes -r \S*/{re.escape(lock.group(1))}\b", runs)
    assert "--no-deps --no-build-isolation" in runs
    # The same two steps in `make venv`, with the dev tools' lock.
    assert "pip install -q --require-hashes -r $(DEV_LOCK)" in makefile
    assert "pip install -q --no-deps --no-build-isolation -e ." in makefile


def test_the_image_copies_every_package_and_the_context_has_them() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    copies = [
        shlex.split(args)
        for keyword, args in instructions()
        if keyword == "COPY" and "--from=" not in args
    ]
    sources = [src.rstrip("/") for words in copies for src in words[:-1]]
    assert set(packages) <= set(sources)
    allowed = [
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for src in sources:
        assert any(fnmatch.fnmatch(src, pattern) for pattern in allowed), (
            f"{src} is copied but .dockerignore keeps it out of the build context"
        )
        assert (ROOT / src).exists(), src


def test_the_healthcheck_script_is_in_the_image() -> None:
    (check,) = [args for keyword, args in final_stage() if keyword == "HEALTHCHECK"]
    script = exec_form(check[check.index("CMD ") + 4 :])[-1]
    copied = {shlex.split(args)[-1] for keyword, args in final_stage() if keyword == "COPY"}
    assert script in copied


def test_entrypoint_and_every_compose_command_is_an_ocpi_hub_command() -> None:
    (entrypoint,) = [exec_form(a) for k, a in final_stage() if k == "ENTRYPOINT"]
    (default,) = [exec_form(a) for k, a in final_stage() if k == "CMD"]
    assert entrypoint[-1] == "ocpi-hub" and default[0] in CLI_COMMANDS
    services = platform_services()
    assert {
        "api",
        "processors",
        "projections",
        "push",
        "gateway",
        "billing-worker",
    } <= services.keys()
    for name, svc in services.items():
        assert svc["command"][0] in CLI_COMMANDS, name


def test_compose_builds_the_platform_from_the_dockerfile() -> None:
    for name, svc in platform_services().items():
        assert (ROOT / "deploy" / svc["build"]["context"]).resolve() == ROOT, name
        assert svc["build"]["dockerfile"] == "Dockerfile", name
        # The code comes from the image, never from a mounted work tree.
        assert all(not v.startswith((".", "/")) for v in svc.get("volumes", [])), name
        assert svc.get("restart") == "unless-stopped", name


def test_scaled_profile_runs_two_of_each_scalable_process() -> None:
    def processes(profile: str | None) -> Counter[str]:
        return Counter(
            svc["command"][0]
            for svc in platform_services().values()
            if not svc.get("profiles") or profile in svc["profiles"]
        )

    assert processes(None) == Counter(
        {"api": 1, "processors": 1, "projections": 1, "push": 1, "gateway": 1, "billing-worker": 1}
    )
    scaled = processes("scaled")
    assert (scaled["api"], scaled["processors"], scaled["projections"]) == (2, 2, 2)


def test_every_api_container_is_behind_the_one_published_port() -> None:
    spec = compose()
    api_names = {n for n, s in platform_services().items() if s["command"][0] == "api"}
    edge = spec["services"]["api-edge"]
    assert edge["ports"] and not any(spec["services"][n].get("ports") for n in api_names)
    (config,) = [c["source"] for c in edge["configs"]]
    servers = re.findall(r"^\s*server \S+ (\S+):8000\b", spec["configs"][config]["content"], re.M)
    assert set(servers) == api_names


def test_second_processors_worker_keeps_its_own_table_state() -> None:
    services = platform_services()
    second = services["processors-2"]["environment"]
    first_dir = services["processors"]["environment"].get("OCPI_HUB_FAUST_DATADIR")
    assert second["OCPI_HUB_FAUST_DATADIR"] != first_dir
