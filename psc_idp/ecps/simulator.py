"""``psc-ecps``: a phone-app simulator for e-CPS, for people and tests.

It does what the app does: generates an EC P-256 key pair "on the device", enrols it,
shows the pending login with its three codes, and signs the professional's decision. The
private key is kept in ``<home>/device.json`` encrypted under the app PIN (scrypt, a
memory-hard KDF, then AES-256-GCM); after ``MAX_PIN_ERRORS`` wrong PINs in a row the key
is wiped, like a real app."""

from __future__ import annotations

import base64
import json
import os
import secrets
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import click
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from joserfc import jwt
from joserfc.jwk import ECKey

MAX_PIN_ERRORS = 5
SCRYPT = {"n": 2 ** 15, "r": 8, "p": 1}


class AppError(click.ClickException):
    pass


# --- local key store ------------------------------------------------------------------------

class Wallet:
    def __init__(self, home: Path):
        self.home = home
        self.path = home / "device.json"

    def load(self) -> dict:
        if not self.path.exists():
            raise AppError(f"no e-CPS activated in {self.home} (run: psc-ecps activate)")
        return json.loads(self.path.read_text())

    def save(self, state: dict) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.chmod(0o600)
        tmp.replace(self.path)

    @staticmethod
    def _kek(pin: str, salt: bytes) -> bytes:
        return Scrypt(salt=salt, length=32, **SCRYPT).derive(pin.encode())

    def store_key(self, state: dict, key: ec.EllipticCurvePrivateKey, pin: str) -> dict:
        salt, nonce = os.urandom(16), os.urandom(12)
        der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        state["key"] = {"kdf": "scrypt", **SCRYPT, "salt": _b64(salt), "nonce": _b64(nonce),
                        "ciphertext": _b64(AESGCM(self._kek(pin, salt)).encrypt(nonce, der,
                                                                                b"e-CPS"))}
        state["pin_errors"] = 0
        return state

    def unlock(self, pin: str) -> tuple[dict, ec.EllipticCurvePrivateKey]:
        state = self.load()
        sealed = state.get("key")
        if not sealed:
            raise AppError("the key was wiped after too many wrong PINs: activate again")
        try:
            der = AESGCM(self._kek(pin, _unb64(sealed["salt"]))).decrypt(
                _unb64(sealed["nonce"]), _unb64(sealed["ciphertext"]), b"e-CPS")
        except Exception:
            state["pin_errors"] = state.get("pin_errors", 0) + 1
            left = MAX_PIN_ERRORS - state["pin_errors"]
            if left <= 0:
                state["key"] = None
                self.save(state)
                raise AppError("wrong PIN: too many errors, the key has been wiped") from None
            self.save(state)
            raise AppError(f"wrong PIN ({left} attempt(s) left before the key is wiped)") \
                from None
        if state.get("pin_errors"):
            state["pin_errors"] = 0
            self.save(state)
        return state, serialization.load_der_private_key(der, None)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


# --- talking to psc-idp ---------------------------------------------------------------------

def _context(ca: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()


def call(state: dict, method: str, path: str, body=None, auth: str | None = None,
         timeout: float = 35) -> dict:
    url = state["issuer"] + path
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    if auth:
        headers["Authorization"] = f"ECPS {auth}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout,
                                    context=_context(state.get("ca"))) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read())
            message = f"{error.get('error')}: {error.get('error_description')}"
        except ValueError:
            message = f"HTTP {exc.code}"
        raise AppError(message) from None
    except (urllib.error.URLError, OSError) as exc:
        raise AppError(f"cannot reach {state['issuer']}: {exc}") from None


def _sign(key, kid: str, typ: str, claims: dict) -> str:
    return jwt.encode({"alg": "ES256", "typ": typ, "kid": kid}, claims, ECKey.import_key(key))


def device_auth(state: dict, key) -> str:
    issued = int(time.time())
    return _sign(key, state["device_id"], "ecps-auth+jwt", {
        "iss": state["device_id"], "aud": state["issuer"], "iat": issued, "exp": issued + 60,
        "jti": secrets.token_urlsafe(16)})


# --- commands ---------------------------------------------------------------------------------

def _home(home: str | None) -> Path:
    return Path(home or os.environ.get("PSC_ECPS_HOME") or Path.home() / ".psc-ecps")


home_option = click.option("--home", envvar="PSC_ECPS_HOME", default=None,
                           help="where the simulated phone keeps its state (~/.psc-ecps)")
pin_option = click.option("--pin", envvar="PSC_ECPS_PIN", prompt="PIN e-CPS", hide_input=True,
                          help="the app PIN")


@click.group(help="psc-ecps: e-CPS phone-app simulator for psc-idp.")
def main():
    pass


@main.command()
@click.option("--qr", "qr_text", help="the text form of the activation QR code")
@click.option("--issuer", help="issuer URL (with --id-nat; the QR code carries it)")
@click.option("--id-nat", help="activation by codes: your idNat")
@click.option("--sms-code", help="activation by codes: the code received by SMS")
@click.option("--email-code", help="activation by codes: the code received by e-mail")
@click.option("--label", default="psc-ecps simulator", help="name of this device")
@click.option("--ca", type=click.Path(exists=True, dir_okay=False),
              help="CA file to trust for psc-idp's TLS certificate")
@home_option
@click.option("--pin", envvar="PSC_ECPS_PIN", prompt="Choose a PIN", hide_input=True,
              confirmation_prompt=True)
def activate(qr_text, issuer, id_nat, sms_code, email_code, label, ca, home, pin):
    """Enrol this simulated phone (QR code from a card login, or SMS + e-mail codes)."""
    if len(pin) < 4 or not pin.isdigit():
        raise AppError("the PIN must be at least 4 digits")
    if qr_text:
        prefix = "psc-ecps:activate?"
        try:
            assert qr_text.startswith(prefix)
            qr = json.loads(qr_text[len(prefix):])
            issuer, payload = qr["issuer"], {"qr_secret": qr["secret"]}
        except (AssertionError, ValueError, KeyError, TypeError):
            raise AppError("this is not an e-CPS activation QR code") from None
    elif issuer and id_nat and sms_code and email_code:
        payload = {"id_nat": id_nat, "sms_code": sms_code, "email_code": email_code}
    else:
        raise AppError("give --qr, or --issuer with --id-nat, --sms-code and --email-code")
    key = ec.generate_private_key(ec.SECP256R1())
    public = ECKey.import_key(key.public_key()).as_dict(private=False)
    state = {"issuer": issuer.rstrip("/"), "ca": os.path.abspath(ca) if ca else None}
    answer = call(state, "POST", "/ecps/api/activate",
                  {**payload, "public_jwk": public, "label": label})
    state.update(device_id=answer["device_id"], id_nat=answer["id_nat"], label=label)
    wallet = Wallet(_home(home))
    wallet.save(wallet.store_key(state, key, pin))
    click.echo(f"e-CPS activated for {answer['id_nat']} (device {answer['device_id']})")


@main.command()
@click.option("--wait", default=0, type=click.IntRange(0, 25),
              help="seconds to wait for a request (long poll)")
@click.option("--json", "as_json", is_flag=True)
@home_option
@pin_option
def pending(wait, as_json, home, pin):
    """Show the login requests waiting for this phone, with their three codes."""
    state, key = Wallet(_home(home)).unlock(pin)
    requests = call(state, "GET", f"/ecps/api/pending?wait={wait}",
                    auth=device_auth(state, key))["requests"]
    if as_json:
        click.echo(json.dumps(requests))
        return
    if not requests:
        click.echo("no pending request")
    for r in requests:
        click.echo(f"{r['request']}  {r['client'] or 'application'}  from "
                   f"{r.get('network') or '?'}  codes: {'  '.join(r['candidates'])}")


def _chosen(requests: list[dict], request_id: str | None, code: str | None) -> dict | None:
    """The request the professional answers: the one named, else the newest that offers
    the code they were shown (what a person does when several are pending), else the
    newest."""
    if request_id:
        return next((r for r in requests if r["request"] == request_id), None)
    newest_first = requests[::-1]
    return next((r for r in newest_first if code in r["candidates"]),
                newest_first[0] if newest_first else None)


def linked_request(state: dict, link: str) -> str:
    """The login request an app link names: ``psc-ecps://approve?issuer=…&request=…`` (the
    app's scheme) or ``<issuer>/ecps/phone?request=…`` (the sandbox's browser phone), for
    this phone's issuer only."""
    parts = urlsplit(link.strip())
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if parts.scheme == "psc-ecps" and parts.netloc == "approve":
        issuer = query.get("issuer", "")
    elif parts.scheme in ("https", "http") and parts.path.endswith("/ecps/phone"):
        issuer = f"{parts.scheme}://{parts.netloc}{parts.path[:-len('/ecps/phone')]}"
    else:
        raise AppError("this is not an e-CPS app link")
    if issuer.rstrip("/") != state["issuer"]:
        raise AppError(f"this link is for {issuer}, not for this phone's {state['issuer']}")
    if not query.get("request"):
        raise AppError("this app link names no login request")
    return query["request"]


def _decide(home, pin, request_id, decision, code=None, wait=0, link=None) -> dict:
    state, key = Wallet(_home(home)).unlock(pin)
    if link:
        if request_id:
            raise AppError("give --link or --request, not both")
        request_id = linked_request(state, link)
    requests = call(state, "GET", f"/ecps/api/pending?wait={wait}",
                    auth=device_auth(state, key))["requests"]
    chosen = _chosen(requests, request_id, code)
    if chosen is None:
        raise AppError("no pending request" + (f" {request_id}" if request_id else ""))
    claims = {"request": chosen["request"], "nonce": chosen["nonce"], "decision": decision,
              "iat": int(time.time())}
    if code is not None:
        claims["code"] = code
    token = _sign(key, state["device_id"], "ecps-decision+jwt", claims)
    return call(state, "POST", "/ecps/api/decision", {"decision": token})


@main.command()
@click.option("--code", required=True, help="the code shown on the login page")
@click.option("--request", "request_id", help="request id (default: the pending one)")
@click.option("--link", help="the app link of a login on this phone (psc-ecps://approve?…)")
@click.option("--wait", default=0, type=click.IntRange(0, 25))
@home_option
@pin_option
def approve(code, request_id, link, wait, home, pin):
    """Approve the pending login by picking the code shown on the login page."""
    result = _decide(home, pin, request_id, "approve", code=code, wait=wait, link=link)
    click.echo(f"request {result['request']}: {_told(result['status'])}")
    if result["status"] != "approved":
        sys.exit(1)


@main.command()
@click.option("--request", "request_id", help="request id (default: the pending one)")
@click.option("--link", help="the app link of a login on this phone (psc-ecps://approve?…)")
@click.option("--wait", default=0, type=click.IntRange(0, 25))
@home_option
@pin_option
def deny(request_id, link, wait, home, pin):
    """Refuse the pending login ("ce n'est pas moi")."""
    result = _decide(home, pin, request_id, "deny", wait=wait, link=link)
    click.echo(f"request {result['request']}: {_told(result['status'])}")


#: what each outcome of a decision means for the professional at the login page
OUTCOMES = {
    "approved": "approved: the login page continues to the application",
    "wrong_code": "wrong code picked: the login page shows 'you picked another code' and "
                  "the login is refused",
    "denied": "denied: the login page shows 'the sign-in was refused in the e-CPS app'",
}


def _told(status: str) -> str:
    return OUTCOMES.get(status, status)


@main.command()
@click.option("--json", "as_json", is_flag=True)
@home_option
@pin_option
def devices(as_json, home, pin):
    """List the e-CPS devices of this professional."""
    state, key = Wallet(_home(home)).unlock(pin)
    found = call(state, "GET", "/ecps/api/devices", auth=device_auth(state, key))["devices"]
    if as_json:
        click.echo(json.dumps(found))
        return
    for d in found:
        mark = " (this phone)" if d["this_device"] else ""
        click.echo(f"{d['device_id']}  {d['label']}  {d['status']}{mark}")
