"""``psc-card``: approve a CIBA request with a CPS card, from the professional's desktop
(the CIBA card channel, psc.md §7; PSC does it with its CPS-Gestion application).

The command opens the card's PKCS#11 token with its PIN, reads the card certificate from
it, proves possession by signing a server nonce, lists the pending requests of the card's
practitioner, shows the requesting application's name and the binding message (which the
professional checks against what the application shows), and signs the decision with the
card's key — inside the token (``CKM_SHA256_RSA_PKCS``): the key never leaves it. The
server's side is ``ciba.card``; what the card signs, ``ciba.card_messages``."""

from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.error
import urllib.request

import click

from ..cli_support import OneLineError, OneLineGroup, iso
from .card_messages import decision_message, list_message

PROG = "psc-card"


class CardToolError(OneLineError):
    """What ``psc-card`` prints as one line, ``psc-card: error: …``, with exit status 1."""

    def show(self, file=None) -> None:
        click.echo(f"{PROG}: error: {self.format_message()}", err=True, file=file)




class CardGroup(OneLineGroup):
    """Every error, usage errors included, is one line on stderr with its exit status."""

    error_class = CardToolError


# --- the card (PKCS#11) -------------------------------------------------------------------------

def default_module() -> str:
    """``PKCS11_MODULE``, else the SoftHSM2 library the sandbox uses."""
    from ..sandbox.cards import SandboxError, softhsm_module

    try:
        return softhsm_module()
    except SandboxError:
        raise CardToolError("no PKCS#11 module: give --module or set PKCS11_MODULE") from None


class Card:
    """A card's token, opened with the user PIN: its certificate, and signing inside it."""

    def __init__(self, module: str, label: str, pin: str):
        import pkcs11
        from pkcs11 import Attribute, ObjectClass
        from pkcs11 import exceptions as failed

        try:
            token = pkcs11.lib(module).get_token(token_label=label)
            self.session = token.open(user_pin=pin)
        except failed.NoSuchToken:
            raise CardToolError(f"no card {label!r} in a reader (PKCS#11 token not found)") \
                from None
        except (failed.PinIncorrect, failed.PinLenRange, failed.PinInvalid):
            raise CardToolError("wrong PIN") from None
        except failed.PinLocked:
            raise CardToolError("the card's PIN is locked: unlock it with its PUK") from None
        except failed.PKCS11Error as exc:
            raise CardToolError(f"cannot open the card {label!r}: {exc or type(exc).__name__}"
                                ) from None
        certificates = list(self.session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}))
        keys = {bytes(k[Attribute.ID]): k for k in self.session.get_objects(
            {Attribute.CLASS: ObjectClass.PRIVATE_KEY})}
        paired = [c for c in certificates if bytes(c[Attribute.ID]) in keys]
        if not paired:
            self.close()
            raise CardToolError(f"the card {label!r} holds no certificate with its key")
        self.key = keys[bytes(paired[0][Attribute.ID])]
        der = bytes(paired[0][Attribute.VALUE])
        self.certificate = "-----BEGIN CERTIFICATE-----\n" + "\n".join(
            _chunks(base64.b64encode(der).decode(), 64)) + "\n-----END CERTIFICATE-----\n"

    def sign(self, message: str) -> str:
        """RSASSA-PKCS1-v1_5 SHA-256 by the card, base64url without padding."""
        from pkcs11 import Mechanism

        signature = self.key.sign(message.encode(), mechanism=Mechanism.SHA256_RSA_PKCS)
        return base64.urlsafe_b64encode(bytes(signature)).rstrip(b"=").decode()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Card:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _chunks(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


# --- psc-idp ------------------------------------------------------------------------------------

class Issuer:
    """The card channel's API of one psc-idp issuer, over HTTPS."""

    def __init__(self, url: str, ca_file: str | None):
        self.url = url.rstrip("/")
        try:
            self.context = ssl.create_default_context(cafile=ca_file)
        except (ssl.SSLError, OSError) as exc:
            raise CardToolError(f"cannot read the CA file {ca_file}: {exc}") from None

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), method="POST",
            headers={"Accept": "application/json", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.context) as answer:
                return json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read())
                message = f"{error['error']}: {error.get('error_description', '')}"
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {exc.code} from {self.url}{path}"
            raise CardToolError(message) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise CardToolError(f"cannot reach {self.url}: {getattr(exc, 'reason', exc)}") \
                from None

    def pending(self, card: Card) -> list[dict]:
        nonce = self.post("/ciba/card/nonce", {})["nonce"]
        return self.post("/ciba/card/pending", {
            "certificate": card.certificate, "nonce": nonce,
            "signature": card.sign(list_message(nonce))})["requests"]

    def decide(self, card: Card, pending: dict, decision: str) -> dict:
        message = decision_message(pending["request"], pending["challenge"], decision)
        return self.post("/ciba/card/decide", {
            "certificate": card.certificate, "request": pending["request"],
            "decision": decision, "signature": card.sign(message)})


# --- commands -----------------------------------------------------------------------------------

def _card_options(command):
    for option in reversed([
        click.option("--issuer", envvar="PSC_CARD_ISSUER", required=True,
                     help="psc-idp's issuer URL"),
        click.option("--token", "label", envvar="PSC_CARD_TOKEN", required=True,
                     help="the card's PKCS#11 token label (CPS-<idNat>)"),
        click.option("--pin", envvar="PSC_CARD_PIN", prompt="Card PIN", hide_input=True,
                     help="the card's PIN"),
        click.option("--module", envvar="PKCS11_MODULE",
                     help="PKCS#11 library of the card reader (default: SoftHSM2)"),
        click.option("--ca-file", type=click.Path(exists=True, dir_okay=False),
                     envvar="PSC_CARD_CA_FILE", help="CA file to trust for psc-idp's TLS"),
    ]):
        command = option(command)
    return command


def _open(issuer, label, pin, module, ca_file) -> tuple[Issuer, Card]:
    return Issuer(issuer, ca_file and os.path.abspath(ca_file)), \
        Card(module or default_module(), label, pin)


def _line(pending: dict) -> str:
    return (f"{pending['request']}  {pending['client'] or 'application'}  message "
            f"{pending['binding_message'] or '-'}  until {iso(pending['expires_at'])}")


@click.group(cls=CardGroup, help="psc-card: approve sign-ins (CIBA) with your CPS card.")
def main():
    pass


@main.command()
@_card_options
@click.option("--json", "as_json", is_flag=True, help="the requests as JSON")
def pending(issuer, label, pin, module, ca_file, as_json):
    """List the sign-in requests waiting for your card."""
    server, card = _open(issuer, label, pin, module, ca_file)
    with card:
        requests = server.pending(card)
    if as_json:
        click.echo(json.dumps(requests))
    elif not requests:
        click.echo("no pending request")
    for found in [] if as_json else requests:
        click.echo(_line(found))


@main.command()
@_card_options
@click.option("--request", "request_id", help="the request to answer (default: the only one)")
@click.option("--deny", is_flag=True, help="refuse the request instead")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def approve(issuer, label, pin, module, ca_file, request_id, deny, yes):
    """Approve (or, with --deny, refuse) a sign-in request with your card."""
    server, card = _open(issuer, label, pin, module, ca_file)
    with card:
        chosen = _chosen(server.pending(card), request_id)
        decision = "deny" if deny else "approve"
        click.echo(f"Application: {chosen['client'] or 'application'}\n"
                   f"Message: {chosen['binding_message'] or '-'}\n"
                   f"Request: {chosen['request']} (until {iso(chosen['expires_at'])})")
        if not yes and not click.confirm(
                f"{'Refuse' if deny else 'Approve'} this sign-in? Check that the application "
                "shows the same message", default=False):
            raise CardToolError("not confirmed: nothing was sent")
        result = server.decide(card, chosen, decision)
    click.echo(f"request {result['request']}: {result['status']}")


def _chosen(requests: list[dict], request_id: str | None) -> dict:
    if request_id:
        for found in requests:
            if found["request"] == request_id:
                return found
        raise CardToolError(f"request {request_id} is not pending for this card")
    if not requests:
        raise CardToolError("no pending request for this card")
    if len(requests) > 1:
        for found in requests:
            click.echo(_line(found), err=True)
        raise CardToolError(f"{len(requests)} requests are pending: choose one with --request")
    return requests[0]


if __name__ == "__main__":
    main(prog_name=PROG)
