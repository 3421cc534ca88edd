"""What `make up` waits for before it calls a platform process ready
(deploy/local/infra.py): for the processors, the line Faust's worker logs
once its tables are recovered, read from the log of the processors `make up`
started for this test run."""

from __future__ import annotations

from tests.deploy_scripts import load_script

infra = load_script("deploy/local/infra.py", "deploy_local_infra")


def test_the_processors_readiness_is_a_line_the_running_processors_wrote() -> None:
    [(readiness, argv)] = [
        (ready, argv) for name, argv, ready in infra.PLATFORM_PROCESSES if name == "processors"
    ]
    assert readiness.startswith("log:") and argv[-1] == "processors"
    said, last = infra.log_says(infra.Proc("processors").log, readiness[4:])
    assert said, last
    # Recovery may outlast the other processes' bound; every instance gets the longer one.
    assert infra.READY_TIMEOUT["processors"] >= infra.HEALTH_TIMEOUT
