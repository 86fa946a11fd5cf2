"""Sending one alert through one channel: an e-mail (smtplib, STARTTLS, login) or a webhook (an HTTP
POST of JSON). Each send raises on failure (the dispatcher retries); none logs the password, which is
read from its variable or file at each send, so a rotated secret needs no restart.
"""

from __future__ import annotations

import contextlib
import json
import os
import smtplib
import ssl
import urllib.request
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from processor.alert_settings import SmtpChannel, WebhookChannel


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is not a delivery: urllib would follow it as a GET without the alert."""

    def redirect_request(self, *_: Any) -> None:
        return None  # the 3xx then comes back as an HTTPError


_NO_REDIRECTS = urllib.request.build_opener(_RefuseRedirects)


Fault = Literal["channel", "message", "temporary", "unknown"]


class ChannelError(Exception):
    """A channel refused or could not take an alert (the message names no secret and no value).

    ``fault`` says whose trouble it is, for a sender that keeps messages of its own: ``channel`` (the
    server cannot be reached, refuses the login or the sender: any message would fail alike),
    ``message`` (this message was refused for good: its recipient, its content) or ``temporary`` (the
    server asked for this message to be tried again later: an SMTP 4xx) or ``unknown`` (the connection
    failed after the message itself started to go: it may have been delivered, so it is not sent again).
    """

    def __init__(self, text: str, fault: Fault = "channel") -> None:
        super().__init__(text)
        self.fault: Fault = fault


def send(channel: SmtpChannel | WebhookChannel, subject: str, fields: dict[str, Any]) -> None:
    """Deliver one alert through ``channel``; ``ChannelError`` (or an ``OSError``) when it did not."""
    if isinstance(channel, SmtpChannel):
        _mail(channel, subject, fields)
    else:
        _post(channel, subject, fields)


def _mail(channel: SmtpChannel, subject: str, fields: dict[str, Any]) -> None:
    text = "\n".join(f"{key}: {value}" for key, value in fields.items()) + "\n"
    _deliver(channel, _message(channel.sender, channel.recipients, subject, text))


def mail_text(channel: SmtpChannel, recipients: list[str], subject: str, text: str) -> None:
    """Mail a plain ``text`` to ``recipients`` through ``channel``; raises as ``send`` does."""
    _deliver(channel, _message(channel.sender, recipients, subject, text))


def mail_file(channel: SmtpChannel, recipients: list[str], subject: str, text: str, attachment: Path) -> None:
    """Mail ``attachment`` (a report) to ``recipients`` through ``channel``; raises as ``send`` does."""
    message = _message(channel.sender, recipients, subject, text)
    message.add_attachment(attachment.read_bytes(), maintype="text", subtype="csv", filename=attachment.name)
    _deliver(channel, message)


def _message(sender: str, recipients: list[str], subject: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message.set_content(text)
    return message


class _Tracking:
    """Notes when the message itself starts to go (``DATA``): a failure after that may have delivered."""

    data_started = False

    def data(self, msg: Any) -> tuple[int, bytes]:
        self.data_started = True
        return super().data(msg)  # type: ignore[misc, no-any-return]


class _SMTP(_Tracking, smtplib.SMTP):
    pass


class _SMTP_SSL(_Tracking, smtplib.SMTP_SSL):  # noqa: N801 (smtplib's name)
    pass


def _deliver(channel: SmtpChannel, message: EmailMessage) -> None:
    context = ssl.create_default_context(cafile=str(channel.ca_file) if channel.ca_file else None)
    try:
        if channel.tls == "implicit":
            smtp: _SMTP | _SMTP_SSL = _SMTP_SSL(
                channel.host, channel.port, timeout=channel.timeout_s, context=context
            )
        else:
            smtp = _SMTP(channel.host, channel.port, timeout=channel.timeout_s)
    except (smtplib.SMTPException, ValueError) as exc:
        raise ChannelError(f"the SMTP server cannot be reached ({type(exc).__name__})") from None
    try:
        refused = _session(channel, smtp, context, message)
    finally:
        smtp.close()
    if refused:
        text = f"the SMTP server refused {len(refused)} of the recipients"
        raise ChannelError(text, _refusal_fault(refused))


def _session(
    channel: SmtpChannel, smtp: _SMTP | _SMTP_SSL, context: ssl.SSLContext, message: EmailMessage
) -> dict[str, Any]:
    """TLS, login and the message on an open connection; QUIT's own trouble after a delivery is not
    the message's (it went)."""
    try:
        if channel.tls == "starttls":
            smtp.starttls(context=context)
        if channel.username is not None:
            smtp.login(channel.username, _password(channel))
    except (smtplib.SMTPException, ValueError) as exc:  # before the message: the channel's trouble
        raise ChannelError(f"the SMTP server refused the session ({type(exc).__name__})") from None
    refused = _send_message(smtp, message)
    with contextlib.suppress(smtplib.SMTPException, OSError):
        smtp.quit()
    return refused


def _refusal_fault(refused: dict[str, tuple[int, bytes]]) -> Fault:
    """Refused recipients: for now when every refusal is a 4xx; the server's policy (5.7.x: relaying
    denied, say) is the channel's trouble; else this recipient's, for good."""
    replies = list(refused.values())
    if all(400 <= code < 500 for code, _ in replies):
        return "temporary"
    if any(_is_policy(code, reply) for code, reply in replies):
        return "channel"
    return "message"


def _is_policy(code: int, reply: bytes) -> bool:
    """A refusal by the server's policy (enhanced status 5.7.x), or a 421 closing the session."""
    return code == 421 or reply.lstrip().startswith(b"5.7.")


def _send_message(smtp: _SMTP | _SMTP_SSL, message: EmailMessage) -> dict[str, Any]:
    """Send on an open session; an error is classified by whose trouble it is (``_fault``). Once the
    message itself started to go, a dropped connection or a timeout leaves it ``unknown``."""
    try:
        return smtp.send_message(message)
    except smtplib.SMTPException as exc:  # (an OSError too: first)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            raise _dropped(smtp, exc) from None
        text = f"the SMTP server refused the message ({type(exc).__name__})"
        raise ChannelError(text, _fault(exc)) from None
    except OSError as exc:  # a time-out, a reset connection
        raise _dropped(smtp, exc) from None


def _dropped(smtp: _SMTP | _SMTP_SSL, exc: OSError) -> ChannelError:
    fault: Fault = "unknown" if smtp.data_started else "channel"
    return ChannelError(f"the SMTP connection failed ({type(exc).__name__})", fault)


def _fault(exc: smtplib.SMTPException) -> Fault:
    """Whose trouble an error of sending one message is (see ``ChannelError``)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return _refusal_fault(exc.recipients)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return "message"  # an address needing SMTPUTF8, which this server lacks
    if not isinstance(exc, smtplib.SMTPResponseException) or isinstance(exc, smtplib.SMTPSenderRefused):
        return "channel"  # the server refuses our sender address, or something unforeseen
    if 400 <= exc.smtp_code < 500 and exc.smtp_code != 421:
        return "temporary"
    # A refused message text: every message is the same template, so none would pass either.
    return "channel"


def _password(channel: SmtpChannel) -> str:
    if channel.password_env is not None:
        password = os.environ.get(channel.password_env)
        if password is None:
            raise ChannelError(f"the environment variable {channel.password_env} is not set")
        return password
    assert channel.password_file is not None  # the settings require one of the two
    try:
        return channel.password_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ChannelError(f"the password file cannot be read ({type(exc).__name__})") from None


def _post(channel: WebhookChannel, subject: str, fields: dict[str, Any]) -> None:
    body = json.dumps({"text": subject, **fields}).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 (the URL's scheme is checked by the settings)
        channel.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with _NO_REDIRECTS.open(request, timeout=channel.timeout_s) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    if not 200 <= status < 300:
        raise ChannelError(f"the webhook answered HTTP {status}")
