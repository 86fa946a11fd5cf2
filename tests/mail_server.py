"""A real SMTP relay for the tests: aiosmtpd on 127.0.0.1 with STARTTLS required and a login, under a
self-signed certificate made by openssl (trusted through a channel's ``ca_file``, as a hospital's own
CA would be). A test may make it refuse chosen recipients, for good (5xx) or for now (4xx).

Its fixtures (``certificate``, ``smtp_server``) are registered for every test by ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from collections.abc import Iterator
from email import message_from_string, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USERNAME, PASSWORD = "ward", "s3cret"


class Mailbox:
    """What the relay took, in order; ``refuse`` maps a recipient to the reply it gets instead."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.recipients: list[list[str]] = []
        self.refuse: dict[str, str] = {}
        self.reply_after_s = 0.0  # keep the message, then answer this late (a slow content scanner)

    async def handle_RCPT(
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content.decode())
        self.recipients.append(list(envelope.rcpt_tos))
        await asyncio.sleep(self.reply_after_s)
        return "250 OK"

    def parsed(self) -> list[EmailMessage]:
        """The messages as e-mail objects (headers decoded, body readable)."""
        return [message_from_string(text, policy=policy.default) for text in self.messages]  # type: ignore[misc]


def login(_server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
    return AuthResult(
        success=isinstance(data, LoginPassword)
        and (data.login, data.password) == (USERNAME.encode(), PASSWORD.encode())
    )


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, as a hospital's own CA would issue for its relay."""
    cert, key = tmp_path / "relay.pem", tmp_path / "relay.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server(certificate: tuple[Path, Path]) -> Iterator[tuple[int, Mailbox]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    port = free_port()
    mailbox = Mailbox()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=login,
    )
    controller.start()
    yield port, mailbox
    controller.stop()


def relay_channel(port: int, certificate: tuple[Path, Path], **extra: Any) -> dict[str, Any]:
    """An [[alerts.channels]] table for the test's SMTP server, trusting its certificate."""
    return {
        "kind": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "ca_file": str(certificate[0]),
        "sender": "wardbulk@hospital.example",
        "recipients": ["oncall@hospital.example"],
        **extra,
    }
