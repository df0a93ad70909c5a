"""Messages of e-CPS: activation codes by e-mail (SMTP) and SMS (a gateway), and login
notifications to the phones (push channels). Codes never reach a log."""

from __future__ import annotations

import importlib
import json
import logging
import smtplib
import ssl
import time
import urllib.request
from email.message import EmailMessage
from pathlib import Path

from ..settings import current as settings

log = logging.getLogger("psc_idp.ecps")


class DeliveryError(Exception):
    pass


def send_activation_codes(practitioner, *, sms_code: str, email_code: str) -> None:
    """Send both halves; a failure is logged (without the code) and does not tell the
    caller anything the person could use to probe the directory."""
    try:
        send_email(practitioner.email, "Activation de votre e-CPS / e-CPS activation",
                   EMAIL_BODY.format(code=email_code, name=practitioner.given_name))
    except (OSError, smtplib.SMTPException) as exc:
        log.error("activation e-mail to %s not sent: %s", _mask(practitioner.email),
                  type(exc).__name__)
    try:
        sms_gateway().send(practitioner.phone, SMS_TEXT.format(code=sms_code))
    except (OSError, DeliveryError) as exc:
        log.error("activation SMS to %s not sent: %s", _mask(practitioner.phone),
                  type(exc).__name__)


EMAIL_BODY = """Bonjour {name},

Voici le code à saisir dans l'application e-CPS pour l'activer : {code}
Un second code vous a été envoyé par SMS. Les deux codes sont nécessaires.
Si vous n'êtes pas à l'origine de cette demande, ignorez ce message.

Your e-CPS activation code is {code}; a second code was sent by SMS.
"""
SMS_TEXT = "e-CPS : votre code d'activation est {code}. Ne le communiquez a personne."


def _mask(value: str) -> str:
    return value[:3] + "…" if value else "?"


def send_email(to: str, subject: str, body: str) -> None:
    s = settings()
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = s.mail_from, to, subject
    message.set_content(body)
    if not s.smtp_host:
        OutboxGateway(s.mail_outbox_dir).send(to, f"Subject: {subject}\n\n{body}")
        return
    with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=10) as smtp:
        if s.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if s.smtp_username:
            smtp.login(s.smtp_username, s.smtp_password)
        smtp.send_message(message)


class OutboxGateway:
    """Development outbox (SMS, and e-mail without an SMTP server): each message is a JSON
    file in a directory people can read (``psc-idp ecps outbox``)."""

    def __init__(self, directory: str):
        self.directory = Path(directory)

    def send(self, to: str, text: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}.json"
        tmp = self.directory / (name + ".tmp")
        tmp.write_text(json.dumps({"to": to, "text": text, "at": int(time.time())},
                                  ensure_ascii=False))
        tmp.chmod(0o600)
        tmp.replace(self.directory / name)

    def messages(self) -> list[dict]:
        if not self.directory.is_dir():
            return []
        return [json.loads(p.read_text()) for p in sorted(self.directory.glob("*.json"))]


class HttpGateway:
    """An SMS provider behind an HTTP API: POST ``{"to", "text"}`` as JSON with a bearer
    token; any 2xx is a success."""

    def __init__(self, url: str, token: str):
        self.url, self.token = url, token

    def send(self, to: str, text: str) -> None:
        request = urllib.request.Request(
            self.url, data=json.dumps({"to": to, "text": text}).encode(), method="POST",
            headers={"Content-Type": "application/json",
                     **({"Authorization": f"Bearer {self.token}"} if self.token else {})})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                if not 200 <= response.status < 300:
                    raise DeliveryError(f"gateway answered {response.status}")
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"gateway answered {exc.code}") from exc


def sms_gateway():
    s = settings()
    if s.sms_gateway == "http":
        return HttpGateway(s.sms_http_url, s.sms_http_token)
    return OutboxGateway(s.sms_outbox_dir)


# --- push ------------------------------------------------------------------------------------

def notify_devices(devices, request) -> None:
    """Wake the phones. The built-in channel needs nothing here: the app long-polls
    ``/ecps/api/pending``. A deployment can plug a real push provider with the
    ``ecps_push`` setting (``module:factory`` returning an object with
    ``notify(device, request_id)``); a push failure never fails the login."""
    path = settings().ecps_push
    if not path:
        return
    try:
        module, _, name = path.partition(":")
        channel = getattr(importlib.import_module(module), name)()
        for device in devices:
            channel.notify(device, request.id)
    except Exception:  # a broken push provider must not break logins
        log.exception("push channel %s failed", path)
