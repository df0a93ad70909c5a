"""Settings of psc-idp: each declared once with its default and meaning, loaded in order
defaults → TOML file (``PSC_IDP_CONFIG``) → ``PSC_IDP_*`` environment → test overrides,
then validated; an insecure production configuration refuses to start. The result is a
frozen ``Settings`` object read by attribute (``current().issuer``), its fields and types
generated from the table below."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from dataclasses import dataclass, make_dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import current_app


class SettingsError(Exception):
    """A setting is missing, malformed or insecure; the message names the key to change."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    doc: str


SETTINGS: tuple[Setting, ...] = (
    Setting("mode", "development", "development or production (production refuses insecure settings)"),
    Setting("issuer", "https://localhost:5443/auth/realms/esante-wallet", "issuer identifier (URL)"),
    Setting("database_url", "sqlite:///var/psc-idp.sqlite3", "SQLAlchemy URL (SQLite or PostgreSQL)"),
    Setting("secret_key", "", "secret for signing browser cookies (at least 32 characters)"),
    Setting("realm_uuid", "550dc1c8-d97b-4b1e-ac8c-8eb4471cf9dd", "uuid in sub = f:<uuid>:<idNat>"),
    Setting("keys_dir", "var/keys", "directory of the token-signing keys (encrypted PEM files)"),
    Setting("keys_passphrase", "", "passphrase of the signing key files"),
    Setting("access_token_lifetime", 120, "access token lifetime, seconds"),
    Setting("id_token_lifetime", 120, "ID token lifetime, seconds"),
    Setting("code_lifetime", 60, "authorization code lifetime, seconds"),
    Setting("refresh_token_lifetime", 1800, "refresh token lifetime (sliding), seconds"),
    Setting("session_lifetime", 28800, "single sign-on session lifetime, seconds"),
    Setting("login_lifetime", 600, "seconds to finish a login once started"),
    Setting("acr", {"card": "eidas1", "ecps": "eidas1"}, "acr value by login method (production PSC sends eidas2 for both)"),
    Setting("auth_level", {"card": "1", "ecps": "1"}, "auth_level claim of ID tokens by login method (as production PSC)"),
    Setting("pkce_required_for_confidential", False, "require_pkce of new confidential clients (PSC does not require PKCE; public clients always need it)"),
    Setting("refresh_reuse_grace", 5, "seconds a rotated refresh token may be presented again (concurrent refreshes) without revoking its chain; 0: never"),
    Setting("dpop_nonce", "token", "where DPoP proofs must carry a server nonce (RFC 9449 §8-§9): token (the token endpoint, as FAPI 2.0 expects), all (userinfo too) or none"),
    Setting("dpop_nonce_lifetime", 300, "seconds between two DPoP nonces; a nonce is accepted until the next one is replaced"),
    Setting("par_lifetime", 60, "seconds a pushed authorization request's request_uri is valid (RFC 9126 §2.2; used once)"),
    Setting("require_pushed_authorization_requests", False, "every client must push its authorization requests (RFC 9126 §5; PSC does not require it; per client: require_pushed_authorization_requests)"),
    Setting("authorization_endpoint", "", "URL of the authorization endpoint, e.g. on a separate 'wallet' origin as PSC (empty: <issuer>/protocol/openid-connect/auth)"),
    Setting("wallet_listen", "", "embedded TLS listener of the authorization endpoint's origin when it differs from the issuer's (empty: none)"),
    Setting("card_login_url", "https://localhost:5444", "origin of the card login (TLS client cert)"),
    Setting("card_trust_anchors", [], "PEM files of the CA certificates cards must chain to"),
    Setting("card_intermediates", [], "PEM files of intermediate CA certificates"),
    Setting("card_crls", [], "CRL files or URLs of the card CAs"),
    Setting("mtls_url", "", "origin of the mTLS endpoint aliases (RFC 8705 §5), e.g. https://mtls.idp.example.org: token, introspection, revocation, userinfo, CIBA and PAR there read the client's TLS certificate (empty: no mTLS client authentication, no certificate-bound tokens)"),
    Setting("mtls_listen", "", "embedded TLS listener of the mTLS origin (mtls_url), which asks for a client certificate (empty: none; behind nginx, its mTLS server block)"),
    Setting("org_trust_anchors", [], "PEM files of the CA certificates organisation certificates (tls_client_auth, IGC-Santé ORG AUTH_CLI) must chain to"),
    Setting("org_intermediates", [], "PEM files of the intermediate CA certificates of organisation certificates"),
    Setting("org_crls", [], "CRL files or URLs of the organisation certificates' CAs"),
    Setting("crl_refresh_interval", 300, "seconds between background CRL refreshes"),
    Setting("crl_grace", 3600, "seconds a CRL is still used past its nextUpdate"),
    Setting("crl_stale_policy", "fail_closed", "fail_closed or fail_open when a CRL is stale"),
    Setting("trusted_proxies", [], "networks of the reverse proxy (or \"unix\" for gunicorn's Unix socket) whose client-certificate, X-Forwarded-For and X-Request-Id headers are honoured"),
    Setting("proxy_secret", "", "secret the reverse proxy sends in X-Psc-Idp-Proxy on every request (required in production with trusted_proxies)"),
    Setting("client_cert_header", "X-SSL-Client-Cert", "header carrying the proxy's client cert"),
    Setting("listen", "127.0.0.1:5443", "embedded TLS listener of the IdP origin"),
    Setting("card_listen", "127.0.0.1:5444", "embedded TLS listener of the card origin"),
    Setting("ops_listen", "127.0.0.1:5445", "embedded plain-HTTP listener of /healthz, /readyz with details and /metrics, for probes and Prometheus (empty: none); keep it on loopback or a management network"),
    Setting("request_timeout", 60, "embedded listeners: seconds a connection has to finish its TLS handshake (PIN entry included) and send a whole request, and a kept-alive one its next request"),
    Setting("metrics_token", "", "bearer token that opens /metrics and the /readyz details on the public origins (gunicorn behind nginx; at least 32 characters; empty: only on ops_listen)"),
    Setting("tls_cert", "", "PEM certificate of the embedded listeners"),
    Setting("tls_key", "", "PEM private key of the embedded listeners"),
    Setting("cookie_secure", True, "mark cookies Secure (HTTPS only)"),
    Setting("client_secret_grace", 86400, "seconds an old client secret works after a rotation"),
    Setting("admins", [], "idNats allowed in the admin console"),
    Setting("audit_retention_days", 400, "days of audit records kept by 'psc-idp audit purge'"),
    Setting("audit_chain_interval", 1, "seconds between two rounds of each serving process's audit sequencer, which links committed records into the hash chain (0: none in this process; 'psc-idp housekeeping' chains too)"),
    Setting("backchannel_logout_private_networks", False, "production: also post logout tokens to clients whose back-channel URI resolves to a private, loopback or link-local address (relying parties on an internal network); development always does"),
    Setting("backchannel_logout_interval", 2, "seconds between two rounds of each serving process's back-channel logout sender, which posts logout tokens to clients (0: none in this process; 'psc-idp housekeeping' sends too)"),
    Setting("audit_checkpoint_records", 10000, "records chained between two signed checkpoints of the audit chain's head, at most"),
    Setting("audit_checkpoint_interval", 60, "seconds between two signed checkpoints of the audit chain's head, at most (while records are chained)"),
    Setting("audit_unchained_alert", 60, "seconds a record may wait to be chained before 'psc-idp audit verify' fails (above audit_chain_interval, or the housekeeping period without a sequencer)"),
    Setting("directory_sync_max_deactivated_percent", 5, "largest share (%) of the active practitioners 'psc-idp directory sync' deactivates without --force"),
    Setting("log_format", "text", "text or json (one JSON object per line, with the request id)"),
    Setting("db_pool_size", 10, "database connections per process (PostgreSQL)"),
    Setting("ciba_request_lifetime", 120, "seconds a CIBA request waits for the professional's approval (a client's requested_expiry may shorten it; PSC: 120)"),
    Setting("ciba_interval", 1, "minimum seconds between two polls of a CIBA request (the answer's interval; faster gets slow_down; PSC: 1)"),
    Setting("ciba_ping_interval", 1, "seconds between two rounds of each serving process's CIBA ping sender (0: none in this process; 'psc-idp housekeeping' sends too)"),
    Setting("ciba_card_rate_per_network", 120, "calls of the CIBA card channel's API (psc-card: list, decide) per network (IPv4 /24, IPv6 /64) per 10 minutes"),
    Setting("ecps_request_lifetime", 120, "seconds an e-CPS login request waits for the phone"),
    Setting("ecps_qr_lifetime", 90, "seconds an e-CPS activation QR code is valid"),
    Setting("ecps_otp_lifetime", 600, "seconds the e-CPS activation codes (SMS, e-mail) are valid"),
    Setting("ecps_otp_attempts", 5, "activation-code submissions per idNat from one network (IPv4 /24, IPv6 /64) per ecps_otp_lifetime; also the half-right guesses that void one set of codes"),
    Setting("ecps_otp_attempts_per_id_nat", 30, "activation-code submissions per idNat from all networks per ecps_otp_lifetime"),
    Setting("ecps_codes_interval", 60, "seconds between two sends of e-CPS activation codes for one idNat"),
    Setting("ecps_codes_per_id_nat", 3, "sends of e-CPS activation codes per idNat per ecps_otp_lifetime (earlier codes stay valid)"),
    Setting("ecps_codes_per_network", 10, "requests for e-CPS activation codes per network (IPv4 /24, IPv6 /64) per hour, all idNats"),
    Setting("ecps_max_failures", 5, "denials, wrong picks and unanswered requests from one network before its e-CPS login requests for that idNat stop reaching the phone (the professional is never locked)"),
    Setting("ecps_lock_seconds", 900, "sliding window of ecps_max_failures, seconds (at most 3600: housekeeping keeps requests an hour)"),
    Setting("ecps_max_pending", 3, "e-CPS login requests a phone shows at once (one per network; the oldest give way)"),
    Setting("ecps_rate_per_id_nat", 10, "e-CPS login requests per idNat from one network (IPv4 /24, IPv6 /64) per 10 minutes"),
    Setting("ecps_rate_per_address", 60, "e-CPS login requests per network (IPv4 /24, IPv6 /64) per 10 minutes, all idNats"),
    Setting("ecps_push", "", "dotted path of a push channel factory (empty: built-in channel only)"),
    Setting("ecps_channel_listen", "127.0.0.1:5446", "where 'psc-idp ecps channel' serves the phones' long poll (/ecps/api/pending) behind nginx: host:port or unix:/path (psc-idp run serves it on its IdP listener)"),
    Setting("ecps_poll_threads", 2, "waiting phones a process holds a thread for when the channel does not serve /ecps/api/pending (gunicorn reached without nginx's channel route); more get 503 with Retry-After"),
    Setting("smtp_host", "localhost", "SMTP server for e-CPS activation codes (empty: mail outbox)"),
    Setting("mail_outbox_dir", "var/mail-outbox", "development: e-mails written here when smtp_host is empty"),
    Setting("smtp_port", 25, "SMTP port"),
    Setting("smtp_starttls", False, "use STARTTLS"),
    Setting("smtp_username", "", "SMTP login (empty: none)"),
    Setting("smtp_password", "", "SMTP password"),
    Setting("mail_from", "psc-idp <no-reply@localhost>", "From: of e-mails"),
    Setting("sms_gateway", "outbox", "outbox (development: files people can read) or http"),
    Setting("sms_outbox_dir", "var/sms-outbox", "directory of the development SMS outbox"),
    Setting("sms_http_url", "", "URL the http SMS gateway POSTs {to, text} to"),
    Setting("sms_http_token", "", "bearer token of the http SMS gateway"),
    Setting("keys_backend", "file", "where 'psc-idp keys' creates keys: file or pkcs11 (HSM)"),
    Setting("key_publish_delay", 600, "seconds a new key is in the JWKS before it signs "
            "(the JWKS is cached at most that long, up to 300 s)"),
    Setting("key_retire_margin", 300, "seconds a retired key stays published beyond the "
            "longest token lifetime (clock skew)"),
    Setting("pkcs11_module", "", "PKCS#11 module (.so) of the HSM holding pkcs11 keys"),
    Setting("pkcs11_token_label", "", "label of the HSM token holding the signing keys"),
    Setting("pkcs11_pin", "", "user PIN of that token"),
    Setting("brand_name", "psc-idp", "service name in the header of every page (the operator's: a hospital group, a vendor)"),
    Setting("brand_tagline", "", "line under the service name (empty: 'Sign-in for health professionals', translated)"),
    Setting("brand_logo", "", "SVG or PNG file shown before the service name (empty: psc-idp's neutral mark; never the State's Marianne unless you are entitled to it)"),
    Setting("brand_colour", "#000091", "main colour of buttons, links and the header rule (#rrggbb; keep a 4.5:1 contrast with white)"),
    Setting("brand_links", {}, "footer links by name: help, contact, legal, accessibility (URL; empty: psc-idp's own pages)"),
    Setting("operator_name", "", "who runs this service, named on the legal notice page"),
    Setting("operator_contact", "", "support contact shown in the footer and on error pages (e-mail address or URL)"),
)

_BY_NAME = {s.name: s for s in SETTINGS}
ENV_PREFIX = "PSC_IDP_"

#: one typed, read-only field per setting of the table (int, str, bool, list, dict)
Settings = make_dataclass("Settings", [(s.name, type(s.default)) for s in SETTINGS],
                          frozen=True, slots=True)
Settings.__doc__ = "The validated settings of one psc-idp app (``current()``)."


def current() -> Settings:
    """The settings of the app serving the current request or command: the one accessor."""
    return current_app.extensions["psc_idp"].settings


def load(overrides: dict[str, Any] | None = None, environ=os.environ) -> Settings:
    """Merge defaults, the TOML file, the environment and ``overrides``, then validate."""
    values = {s.name: s.default for s in SETTINGS}
    path = environ.get("PSC_IDP_CONFIG")
    if path:
        values.update(_from_toml(Path(path)))
    values.update(_from_environ(environ))
    values.update(_checked(overrides or {}, "test overrides"))
    validate(values)
    return Settings(**values)


def defaults(**changes) -> Settings:
    """Every default with ``changes``, not validated: for commands and scripts that need a
    few values only (the signing-key tools)."""
    return Settings(**{**{s.name: s.default for s in SETTINGS}, **_checked(changes, "")})


def as_dict(settings: Settings) -> dict[str, Any]:
    return {s.name: getattr(settings, s.name) for s in SETTINGS}


def _from_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"cannot read PSC_IDP_CONFIG file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML: {exc}") from exc
    return _checked(data, str(path))


def _from_environ(environ) -> dict[str, Any]:
    found = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or key == "PSC_IDP_CONFIG":
            continue
        name = key[len(ENV_PREFIX):].lower()
        if name not in _BY_NAME:
            raise SettingsError(f"unknown setting {key}")
        found[name] = _parse_env(name, raw)
    return found


def _parse_env(name: str, raw: str) -> Any:
    default = _BY_NAME[name].default
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError as exc:
            raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be an integer") from exc
    if isinstance(default, list | dict):
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be JSON") from exc
    return raw


def _checked(data: dict[str, Any], origin: str) -> dict[str, Any]:
    unknown = sorted(set(data) - set(_BY_NAME))
    if unknown:
        raise SettingsError(f"unknown setting(s) in {origin}: {', '.join(unknown)}")
    for name, value in data.items():
        default = _BY_NAME[name].default
        if not isinstance(value, type(default)) and not (
            isinstance(default, int) and not isinstance(default, bool) and isinstance(value, int)
        ):
            raise SettingsError(f"setting {name} in {origin} must be {type(default).__name__}")
    return dict(data)


def validate(values: dict[str, Any]) -> None:
    if values["mode"] not in {"development", "production"}:
        raise SettingsError("mode must be 'development' or 'production'")
    if values["crl_stale_policy"] not in {"fail_closed", "fail_open"}:
        raise SettingsError("crl_stale_policy must be 'fail_closed' or 'fail_open'")
    if values["sms_gateway"] not in {"outbox", "http"}:
        raise SettingsError("sms_gateway must be 'outbox' or 'http'")
    if values["keys_backend"] not in {"file", "pkcs11"}:
        raise SettingsError("keys_backend must be 'file' or 'pkcs11'")
    if values["keys_backend"] == "pkcs11" and not (values["pkcs11_module"] and
                                                    values["pkcs11_token_label"]):
        raise SettingsError("keys_backend 'pkcs11' needs pkcs11_module and pkcs11_token_label")
    _check_authorization_endpoint(values)
    _check_mtls(values)
    _check_proxy(values)
    for name in ("acr", "auth_level"):
        if set(values[name]) != {"card", "ecps"} or not all(
                isinstance(v, str) and v for v in values[name].values()):
            raise SettingsError(f"{name} must give a non-empty string for 'card' and 'ecps'")
    if values["ecps_poll_threads"] < 0:
        raise SettingsError("ecps_poll_threads must be 0 or more")
    _check_listen("ecps_channel_listen", values["ecps_channel_listen"])
    if values["backchannel_logout_interval"] < 0:
        raise SettingsError("backchannel_logout_interval must be 0 or more seconds")
    if values["ciba_ping_interval"] < 0:
        raise SettingsError("ciba_ping_interval must be 0 or more seconds")
    if not 10 <= values["ciba_request_lifetime"] <= 600:
        raise SettingsError("ciba_request_lifetime must be from 10 to 600 seconds")
    if not 1 <= values["ciba_interval"] <= 60:
        raise SettingsError("ciba_interval must be from 1 to 60 seconds")
    if values["audit_chain_interval"] < 0:
        raise SettingsError("audit_chain_interval must be 0 or more seconds")
    for name in ("audit_checkpoint_records", "audit_checkpoint_interval", "audit_unchained_alert"):
        if values[name] < 1:
            raise SettingsError(f"{name} must be at least 1")
    if values["dpop_nonce"] not in {"token", "all", "none"}:
        raise SettingsError("dpop_nonce must be 'token', 'all' or 'none'")
    if not 30 <= values["dpop_nonce_lifetime"] <= 3600:
        raise SettingsError("dpop_nonce_lifetime must be between 30 and 3600 seconds")
    if not 10 <= values["par_lifetime"] <= 600:
        raise SettingsError("par_lifetime must be between 10 and 600 seconds")
    if values["refresh_reuse_grace"] < 0 or values["refresh_reuse_grace"] > 60:
        raise SettingsError("refresh_reuse_grace must be between 0 and 60 seconds")
    _check_brand(values)
    if len(values["secret_key"]) < 32:
        raise SettingsError("secret_key must be set to at least 32 random characters")
    if values["mode"] == "production":
        _refuse_insecure(values)


#: the footer links an operator may set (brand_links)
BRAND_LINKS = ("help", "contact", "legal", "accessibility")


def _check_brand(values: dict[str, Any]) -> None:
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", values["brand_colour"]):
        raise SettingsError("brand_colour must be a colour written #rrggbb")
    unknown = sorted(set(values["brand_links"]) - set(BRAND_LINKS))
    if unknown:
        raise SettingsError(f"brand_links: unknown link(s) {', '.join(unknown)} "
                            f"(known: {', '.join(BRAND_LINKS)})")
    for name, url in values["brand_links"].items():
        if not isinstance(url, str) or not re.match(r"(https://|http://|mailto:)\S+$", url):
            raise SettingsError(f"brand_links.{name} must be an https://, http:// or mailto: URL")
    logo = values["brand_logo"]
    if logo and not (logo.lower().endswith((".svg", ".png")) and os.path.isfile(logo)):
        raise SettingsError(f"brand_logo must be an existing .svg or .png file: {logo}")


def _check_authorization_endpoint(values: dict[str, Any]) -> None:
    url = values["authorization_endpoint"]
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"} or not parts.netloc or parts.query or \
            parts.fragment or not parts.path.startswith("/"):
        raise SettingsError("authorization_endpoint must be an absolute URL with a path, "
                            "e.g. https://wallet.example/auth")


def _check_mtls(values: dict[str, Any]) -> None:
    url = values["mtls_url"]
    if url:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.netloc or parts.path or \
                parts.query or parts.fragment:
            raise SettingsError("mtls_url must be an https origin without a path, e.g. "
                                "https://mtls.idp.example.org")
    if values["mtls_listen"] and not url:
        raise SettingsError("mtls_listen needs mtls_url (the origin clients call)")


def _check_listen(name: str, value: str) -> None:
    host, _, port = value.rpartition(":")
    if value.startswith("unix:/") or host and port.isdigit() and 0 < int(port) < 65536:
        return
    raise SettingsError(f"{name} must be host:port or unix:/absolute/path")


def _check_proxy(values: dict[str, Any]) -> None:
    for network in values["trusted_proxies"]:
        if network == "unix":  # gunicorn's Unix socket (net.is_trusted_proxy)
            continue
        try:
            ipaddress.ip_network(network, strict=False)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"trusted_proxies: {network!r} is not an address, a network "
                                "(e.g. 127.0.0.1/32) or \"unix\"") from exc
    if values["proxy_secret"] and len(values["proxy_secret"]) < 32:
        raise SettingsError("proxy_secret must be at least 32 random characters")


def _refuse_insecure(values: dict[str, Any]) -> None:
    problems = {
        "issuer": not values["issuer"].startswith("https://"),
        "authorization_endpoint": bool(values["authorization_endpoint"]) and
        not values["authorization_endpoint"].startswith("https://"),
        "card_login_url": not values["card_login_url"].startswith("https://"),
        "cookie_secure": not values["cookie_secure"],
        "crl_stale_policy": values["crl_stale_policy"] != "fail_closed",
        "keys_passphrase": not values["keys_passphrase"],
        "pkcs11_pin": values["keys_backend"] == "pkcs11" and not values["pkcs11_pin"],
        "card_trust_anchors": not values["card_trust_anchors"],
        "access_token_lifetime": values["access_token_lifetime"] > 3600,
        "code_lifetime": values["code_lifetime"] > 600,
        "sms_gateway": values["sms_gateway"] != "http" or not values["sms_http_url"],
        "smtp_host": not values["smtp_host"],
        # behind a proxy, its headers name the card and the client: the source address
        # alone does not prove who sent them
        "proxy_secret": bool(values["trusted_proxies"]) and not values["proxy_secret"],
    }
    bad = [name for name, insecure in problems.items() if insecure]
    if bad:
        raise SettingsError(f"insecure setting(s) for production mode: {', '.join(bad)}")
