"""The lock files: every dependency pinned with hashes, the image's lock a
subset of the developers' with the same pins, and this venv installed from it."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def read_lock(name: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 hashes) of a `uv pip compile --generate-hashes` file."""
    pins: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for line in (ROOT / name).read_text().splitlines():
        if m := PIN.match(line):
            current = canonicalize_name(m.group(1))
            assert current not in pins, f"{name}: {current} pinned twice"
            pins[current] = (m.group(2), [])
        elif "--hash=sha256:" in line:
            pins[current][1].append(line.split("--hash=sha256:")[1].split()[0])
        elif line.strip() and not line.lstrip().startswith("#"):
            raise AssertionError(f"{name}: unexpected line {line!r}")
    return pins


def makefile_var(name: str) -> str:
    m = re.search(rf"^{name} := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert m, f"Makefile sets no {name}"
    return m.group(1)


LOCK = makefile_var("LOCK")
DEV_LOCK = makefile_var("DEV_LOCK")


def declared() -> dict[str, list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {
        "runtime": [Requirement(r) for r in project["project"]["dependencies"]],
        "dev": [Requirement(r) for r in project["project"]["optional-dependencies"]["dev"]],
        "build": [Requirement(r) for r in project["dependency-groups"]["build"]],
    }


@pytest.mark.parametrize(
    ("lock", "groups"), [(LOCK, ("runtime", "build")), (DEV_LOCK, ("runtime", "dev", "build"))]
)
def test_every_declared_requirement_is_pinned_within_its_range(
    lock: str, groups: tuple[str, ...]
) -> None:
    pins = read_lock(lock)
    for group in groups:
        for req in declared()[group]:
            name = canonicalize_name(req.name)
            assert name in pins, f"{lock} lacks {req} ({group}): run `make lock`"
            version = pins[name][0]
            assert req.specifier.contains(version, prereleases=True), (
                f"{lock} pins {name}=={version}, pyproject.toml asks {req}: run `make lock`"
            )


@pytest.mark.parametrize("lock", [LOCK, DEV_LOCK])
def test_every_pin_has_hashes(lock: str) -> None:
    pins = read_lock(lock)
    assert len(pins) > 50
    for name, (_, hashes) in pins.items():
        assert hashes, f"{lock}: {name} has no hash"
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), name


def test_image_lock_is_the_runtime_part_of_the_dev_lock() -> None:
    runtime, dev = read_lock(LOCK), read_lock(DEV_LOCK)
    for name, (version, hashes) in runtime.items():
        assert dev.get(name, ("missing",))[0] == version, f"{name}: {LOCK} and {DEV_LOCK} differ"
        assert set(hashes) == set(dev[name][1]), name
    # The image carries no test or lint tools.
    for req in declared()["dev"]:
        assert canonicalize_name(req.name) not in runtime, req.name


def test_api_runs_on_uvloop_and_httptools() -> None:
    runtime = read_lock(LOCK)
    assert {"uvloop", "httptools", "orjson"} <= runtime.keys()


def test_this_environment_has_exactly_the_locked_versions() -> None:
    """What `make venv` promises: a venv that is the lock, nothing newer."""
    wrong = {}
    for name, (version, _) in read_lock(DEV_LOCK).items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != version:
            wrong[name] = f"{installed} (locked {version})"
    assert not wrong, f"run `make venv`: {wrong}"
