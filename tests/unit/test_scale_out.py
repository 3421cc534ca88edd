"""Scale-out wiring: `ocpi-hub api --workers` and `infra.py up --scale`.

The running behaviour (two of each against the real services, partitions
split in the consumer groups) is shown by hand in docs/scale-out.md; these
pin the parts that are easy to break silently."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner
from uvicorn.importer import import_from_string

from ocpi_hub import cli
from ocpi_hub.settings import get_settings
from tests.deploy_scripts import load_script

infra = load_script("deploy/local/infra.py", "deploy_local_infra")


def run_api(monkeypatch: pytest.MonkeyPatch, *args: str) -> dict[str, Any]:
    """`ocpi-hub api ARGS` up to the point where uvicorn would serve."""
    seen: dict[str, Any] = {}

    def serve(app: str, **kwargs: Any) -> None:
        seen.update(kwargs, app=app)

    monkeypatch.setattr(uvicorn, "run", serve)
    monkeypatch.setattr(cli, "configure_logging", lambda *a: None)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.app, ["api", *args])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return seen


def test_api_workers_come_from_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = run_api(monkeypatch, "--workers", "3")
    assert seen["workers"] == 3
    # Each worker imports the app factory by name: it must resolve.
    assert seen["factory"] is True
    assert import_from_string(seen["app"]) is cli.api_app


def test_api_workers_default_to_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_api(monkeypatch)["workers"] == 1
    monkeypatch.setenv("OCPI_HUB_API_WORKERS", "2")
    assert run_api(monkeypatch)["workers"] == 2


def test_api_refuses_zero_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    assert CliRunner().invoke(cli.app, ["api", "--workers", "0"]).exit_code != 0


def test_scale_two_starts_two_of_each_scalable_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # The second Faust web port follows the first: its default here, whatever
    # the environment running the tests chose.
    monkeypatch.delenv("OCPI_HUB_FAUST_WEB_PORT", raising=False)
    procs = {pp.proc.name: pp for pp in infra.platform_procs(2)}
    assert list(procs) == [
        "api",
        "processors",
        "processors-2",
        "projections",
        "projections-2",
        "push",
        "billing-worker",
        "gateway",
    ]
    assert procs["api"].argv[-2:] == ["--workers", "2"]
    assert procs["processors-2"].index == 2 and procs["processors"].index == 1
    # Same program, so the same consumer group; apart in what is local.
    assert procs["processors-2"].argv == procs["processors"].argv
    assert procs["processors"].env == {}
    assert procs["processors-2"].env == {
        "OCPI_HUB_FAUST_WEB_PORT": "6067",
        "OCPI_HUB_FAUST_DATADIR": "data/faust-2/{conf.name}",
    }


def test_default_scale_is_the_platform_as_before() -> None:
    names = [pp.proc.name for pp in infra.platform_procs(1)]
    assert names == ["api", "processors", "projections", "push", "billing-worker", "gateway"]
    assert infra.platform_procs(1)[0].argv[-2:] == ["--workers", "1"]


def test_down_and_status_find_instances_by_their_pidfiles(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(infra, "RUN", tmp_path)
    for name in ("processors.pid", "processors-3.pid", "processors-x.pid", "projections-2.pid"):
        (tmp_path / name).write_text("1\n")
    names = [pp.proc.name for pp in infra.platform_procs(None)]
    assert "processors-3" in names and "projections-2" in names
    assert "processors-x" not in names and "processors-2" not in names


def test_a_process_is_ready_when_this_start_logged_it(tmp_path: Path) -> None:
    log = tmp_path / "projections.log"
    log.write_text("\n===== old start\nprojections_started\n\n===== 2026 infra.py starting\n")
    assert infra.log_says(log, "projections_started")[0] is False
    with log.open("a") as out:
        out.write('{"event": "projections_started"}\n')
    assert infra.log_says(log, "projections_started")[0] is True
    assert infra.log_says(tmp_path / "missing.log", "x")[0] is False


@pytest.mark.parametrize("raw", ["0", "17", "two", "-1"])
def test_scale_must_be_a_small_whole_number(raw: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        infra.scale_arg(raw)
    assert infra.scale_arg("2") == 2
