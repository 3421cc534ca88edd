"""The garbage collector's tuning (ocpi_hub/collector.py, docs/adr/0050).
It changes the whole interpreter, so each case runs in a fresh one."""

import json
import os
import subprocess
import sys

_PROBE = """
import gc, json
{setup}
print(json.dumps({{"thresholds": gc.get_threshold(), "frozen": gc.get_freeze_count()}}))
"""


def _probe(setup: str, env: dict[str, str] | None = None) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(setup=setup)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_a_command_collects_the_young_generation_less_often_and_freezes_its_start() -> None:
    default = _probe("")
    tuned = _probe("from ocpi_hub.cli import _settings\n_settings()")
    assert default["thresholds"] == [700, 10, 10]
    assert tuned["thresholds"] == [10_000, 10, 10]
    assert isinstance(tuned["frozen"], int) and tuned["frozen"] > 10_000


def test_tuning_happens_once_per_process() -> None:
    tuned = _probe("from ocpi_hub import collector\ncollector.tune(10_000)\ncollector.tune(50_000)")
    assert tuned["thresholds"] == [10_000, 10, 10]


def test_zero_leaves_pythons_defaults() -> None:
    env = {**os.environ, "OCPI_HUB_GC_YOUNG_THRESHOLD": "0"}
    untouched = _probe("from ocpi_hub.cli import _settings\n_settings()", env)
    assert untouched == {"thresholds": [700, 10, 10], "frozen": 0}
