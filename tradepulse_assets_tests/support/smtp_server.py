"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps every message it accepts, for the email channel."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from email.message import Message

import pytest


class SmtpSink:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[SmtpSink, int]]:
    """``(sink, port)`` of a started SMTP server; ``sink.messages`` are ``(from, recipients, message)``."""
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield sink, controller.port
    finally:
        controller.stop()
