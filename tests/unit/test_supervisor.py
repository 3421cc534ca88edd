"""`make up` keeps the platform's processes running (deploy/local/infra.py,
docs/adr/0030), shown on a throwaway command in a scratch data folder: the
platform `make up` started is never touched.

Real processes and real signals, no services: a keeper is started as `up`
starts one, its process is SIGKILLed or exits by itself, and comes back
after a delay that doubles up to its cap; stopping it leaves nothing that
comes back.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_scale_out import infra

CHILD = """\
import sys, time
from pathlib import Path
marker = Path(sys.argv[1])
while True:
    try:
        sys.exit(int(marker.read_text()))
    except FileNotFoundError:  # also when removed between a check and the read
        time.sleep(0.05)
"""


class Toy:
    def __init__(self, tmp: Path) -> None:
        self.script = tmp / "toy_child.py"
        self.script.write_text(CHILD)
        self.marker = tmp / "exit-code"
        self.proc = infra.Proc("toy", match=str(self.script))
        self.argv = [sys.executable, str(self.script), str(self.marker)]
        self.env = {
            **os.environ,
            "OCPI_HUB_INFRA_DATA": str(tmp / "data"),
            "OCPI_HUB_PROCESS_RESTART_INITIAL_S": "0.5",
            "OCPI_HUB_PROCESS_RESTART_MAX_S": "1",
            "OCPI_HUB_PROCESS_RESTART_RESET_S": "60",
        }

    def pid(self) -> int | None:
        # A reader, not the owner: with forget=True a poll that read the
        # killed pid could remove the pidfile the keeper had just written
        # for the new process (a CI run never saw it come back).
        run = self.proc.running(quiet=True, forget=False)
        return run.pid if run else None

    def state(self) -> dict[str, Any]:
        found: dict[str, Any] = infra.read_supervision("toy")
        return found

    def alive_children(self) -> list[int]:
        """Every live process running the toy script, kept or not."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and str(self.script) in infra.proc_cmdline(int(entry.name)):
                stat = infra._proc_stat(int(entry.name))
                if stat and stat[2] not in ("Z", "X"):
                    found.append(int(entry.name))
        return found


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Toy]:
    data = tmp_path / "data"
    monkeypatch.setattr(infra, "RUN", data / "run")
    monkeypatch.setattr(infra, "LOGS", data / "logs")
    made = Toy(tmp_path)
    try:
        yield made
    finally:
        infra.stop_kept(made.proc)
        for pid in made.alive_children():
            os.kill(pid, signal.SIGKILL)


def until(condition: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
    return found


def test_a_killed_process_comes_back_with_a_doubling_delay(toy: Toy) -> None:
    first = infra.start_kept(toy.proc, toy.argv, None, toy.env)
    assert toy.pid() == first and toy.alive_children() == [first]

    killed_at = time.monotonic()
    os.kill(first, signal.SIGKILL)
    second = until(lambda: (p := toy.pid()) and p != first and p)
    first_delay = time.monotonic() - killed_at
    state = until(lambda: (s := toy.state()) and s.get("restarts") == 1 and s)
    assert state["last_exit"] == -signal.SIGKILL
    assert "killed by SIGKILL" in infra.supervision_note(toy.proc, True)

    killed_at = time.monotonic()
    os.kill(second, signal.SIGKILL)
    third = until(lambda: (p := toy.pid()) and p != second and p)
    second_delay = time.monotonic() - killed_at
    assert 0.45 <= first_delay < 1.0 and 0.95 <= second_delay < 1.6  # 0.5 s, then 1 s
    assert toy.alive_children() == [third]


def test_one_that_exits_by_itself_waits_at_most_the_cap(toy: Toy) -> None:
    infra.start_kept(toy.proc, toy.argv, None, toy.env)
    toy.marker.write_text("3")  # every run now exits at once with 3
    state = until(lambda: (s := toy.state()) and s.get("restarts", 0) >= 3 and s, timeout=10)
    assert state["last_exit"] == 3
    # While it waits: not running, and status says when it comes back.
    note = until(lambda: "restarting in" in (n := infra.supervision_note(toy.proc, False)) and n)
    assert "exit code 3" in note
    waits = [line for line in infra.tail(infra.keeper_of(toy.proc).log, 40).splitlines()]
    delays = [float(w.rsplit("again in ", 1)[1].rstrip("s")) for w in waits if "again in" in w]
    assert delays[:3] == [0.5, 1.0, 1.0]  # doubled, then held at the cap

    toy.marker.unlink()
    # Up to one more run may still see the marker and exit; the one after stays.
    until(lambda: toy.pid() is not None, timeout=10)


def test_stopping_leaves_nothing_to_come_back(toy: Toy) -> None:
    first = infra.start_kept(toy.proc, toy.argv, None, toy.env)
    os.kill(first, signal.SIGKILL)  # stopped while the keeper waits to restart it
    time.sleep(0.1)
    infra.stop_kept(toy.proc)
    time.sleep(1.5)  # beyond the longest delay
    assert toy.pid() is None and toy.alive_children() == []
    assert infra.keeper_of(toy.proc).running(quiet=True) is None

    second = infra.start_kept(toy.proc, toy.argv, None, toy.env)
    assert infra.stop_kept(toy.proc) is True
    time.sleep(1.5)
    assert toy.alive_children() == [] and second not in toy.alive_children()


def test_a_process_started_before_is_adopted_not_doubled(toy: Toy) -> None:
    env = {k: v for k, v in toy.env.items()}
    before = toy.proc.spawn(toy.argv, None, env=env)
    assert infra.start_kept(toy.proc, toy.argv, None, toy.env) == before
    assert toy.alive_children() == [before]
    until(lambda: toy.state().get("pid") == before)  # the keeper watches it
    os.kill(before, signal.SIGKILL)
    toy.proc.popen.wait()  # type: ignore[union-attr] - ours to reap here
    after = until(lambda: (p := toy.pid()) and p != before and p)
    assert toy.alive_children() == [after]
    assert until(lambda: toy.state().get("restarts") == 1)


def test_waiting_for_the_start_only_reads_the_keepers_pidfile(toy: Toy) -> None:
    """`up` waits for the pidfile the keeper writes; it must not remove one it
    cannot yet confirm (the keeper alone writes it, once per start), and when
    it gives up it shows what the keeper and the process logged."""
    blind = infra.Proc("toy", match="not in any command line")
    with pytest.raises(infra.InfraError) as raised:
        infra.start_kept(blind, toy.argv, None, toy.env, timeout=2.0)
    child = until(lambda: toy.alive_children())[0]
    assert blind.pidfile.read_text().split()[0] == str(child)  # left for the keeper
    message = str(raised.value)
    assert "toy was not started within 2s" in message
    assert f"toy: started pid {child}" in message  # the keeper's log
    assert "infra.py starting toy" in message  # the process's log


def test_down_finds_an_instance_that_waits_to_be_restarted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # While its keeper waits, projections-2 has no pidfile of its own.
    monkeypatch.setattr(infra, "RUN", tmp_path)
    (tmp_path / "projections-2.keeper.pid").write_text("1\n")
    names = [pp.proc.name for pp in infra.platform_procs(None)]
    assert "projections-2" in names
