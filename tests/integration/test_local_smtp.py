"""The SMTP service `make up` starts (deploy/local/infra.py, docs/adr/0035):
its command line runs a real aiosmtpd from the venv that answers the
service's health probe, takes a message over SMTP and keeps it in its
Maildir, where a developer reads the activation e-mails; and it is wired
into the services, `make status` and services.env like Redis."""

from __future__ import annotations

import mailbox
import smtplib
import socket
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path

from tests.deploy_scripts import load_script

infra = load_script("deploy/local/infra.py", "deploy_local_infra")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_the_smtp_service_is_wired_like_the_others() -> None:
    assert "smtp" in infra.SERVICES and infra.SERVICE_CLASSES["smtp"] is infra.Smtp
    assert infra.PORT_SPECS["smtp"] == ("OCPI_HUB_SMTP_PORT", 2525, True)
    assert infra.ENV_LINES["smtp"].format(port=2526) == "OCPI_HUB_SMTP_PORT=2526"
    assert any(name == "billing-worker" for name, _, _ in infra.PLATFORM_PROCESSES)


def test_the_smtp_service_answers_its_probe_and_keeps_what_it_takes(tmp_path: Path) -> None:
    service = infra.Smtp()
    service.check_tools()
    service.datadir = tmp_path
    service.ports = {"smtp": _free_port()}
    process = subprocess.Popen(
        service.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path
    )
    try:
        healthy, detail = False, ""
        for _ in range(100):
            try:
                healthy, detail = service.health()
            except OSError as exc:
                detail = str(exc)
            if healthy:
                break
            time.sleep(0.1)
        assert healthy, detail
        assert detail.startswith("220")
        message = EmailMessage()
        message["From"] = "billing@hub.example"
        message["To"] = "ada@acme.example"
        message["Subject"] = "Activate"
        message.set_content("https://hub.example/billing/activation/x\n")
        with smtplib.SMTP("127.0.0.1", service.ports["smtp"], timeout=10) as smtp:
            smtp.send_message(message)
        [kept] = list(mailbox.Maildir(tmp_path / "maildir"))
        assert kept["Subject"] == "Activate"
        assert "billing/activation" in kept.get_payload()
    finally:
        process.terminate()
        process.wait(10)
