"""Audit checkpoints: the chain's head signed through the key ring's ``Signer`` (a compact
JWS, RFC 7515, ``typ`` ``audit-checkpoint+jwt``, claims ``iss``, ``chain_seq``, ``hash``,
``prev`` — the ``chain_seq`` of the checkpoint before, 0 for the first — and ``iat``),
stored in ``audit_checkpoint``, exported as JSON lines and read back from either. An
exported line also carries the public key that signed it, so that it can still be checked
after that key has left the JWKS."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from joserfc.jwk import KeySet

from .audit import AuditCheckpoint
from .extensions import idp
from .keys import jws

TYP = "audit-checkpoint+jwt"
ALG = "RS256"  # every key ring has an RS256 key


class CheckpointError(Exception):
    """A checkpoint that cannot vouch for anything: unreadable, or its signature fails."""


@dataclass(frozen=True)
class Checkpoint:
    chain_seq: int
    hash: str
    prev: int
    at: int
    kid: str
    origin: str  # where it came from, for messages: "stored checkpoint 42", "file.jsonl:3"


def sign(chain_seq: int, digest: str, prev: int, at: int) -> AuditCheckpoint:
    """A new checkpoint of the chain's head, linked to the one before (``prev``: its
    ``chain_seq``); raises ``KeyUnavailable`` when the HSM is."""
    state = idp()
    signer = state.keys.signer(ALG)
    claims = {"iss": state.settings.issuer, "chain_seq": chain_seq, "hash": digest,
              "prev": prev, "iat": at}
    return AuditCheckpoint(chain_seq=chain_seq, hash=digest, prev_seq=prev, at=at,
                           kid=signer.kid, token=jws.encode(claims, signer, typ=TYP))


def export_line(row) -> str:
    """One JSON line: the checkpoint, its JWS and the public key that signed it."""
    published = {key["kid"]: key for key in idp().keys.jwks()["keys"]}
    return json.dumps({"chain_seq": row.chain_seq, "hash": row.hash, "prev": row.prev_seq,
                       "at": row.at,
                       "kid": row.kid, "token": row.token, "jwk": published.get(row.kid)})


class Reader:
    """Reads checkpoints against the keys published when it was made (taken once: a
    verification reads many)."""

    def __init__(self) -> None:
        state = idp()
        jwks = state.keys.jwks()
        self.published = {key["kid"]: key for key in jwks["keys"]}
        self.key_set = KeySet.import_key_set(jwks)

    def row(self, row) -> Checkpoint | None:
        """A stored checkpoint; None when its key is no longer published (it can vouch for
        nothing now: the newer ones do)."""
        origin = f"stored checkpoint {row.chain_seq}"
        if _kid(row.token, origin) not in self.published:
            return None
        found = self.read(row.token, origin)
        if (found.chain_seq, found.hash, found.prev, found.at) != \
                (row.chain_seq, row.hash, row.prev_seq, row.at):
            raise CheckpointError(f"{origin}: its columns differ from its signed claims")
        return found

    def line(self, line: str, origin: str) -> Checkpoint:
        """An exported line: checked against the published key of its ``kid``, or, once
        that key is gone, against the key the line carries."""
        try:
            data = json.loads(line)
            token = data["token"]
        except (ValueError, TypeError, KeyError) as exc:
            raise CheckpointError(f"{origin}: not an exported checkpoint line") from exc
        kid = _kid(token, origin)
        if kid in self.published:
            return self.read(token, origin)
        jwk = data.get("jwk")
        if not isinstance(jwk, dict) or jwk.get("kid") != kid:
            raise CheckpointError(f"{origin}: signed by key {kid}, no longer published, and "
                                  "the line does not carry it")
        return self.read(token, origin, {"keys": [jwk]})

    def read(self, token: str, origin: str, keys: dict | None = None) -> Checkpoint:
        try:
            claims = jws.decode(token, keys or self.key_set, typ=TYP)
        except jws.InvalidJWT as exc:
            raise CheckpointError(f"{origin}: signature or claims do not verify ({exc})") \
                from exc
        # ``iss`` says which deployment signed it, for people; it is not compared with
        # today's issuer: the key vouches, and a deployment that moves to a new address
        # keeps a verifiable trail
        seq, digest, prev, at = (claims.get(name) for name in ("chain_seq", "hash", "prev",
                                                                "iat"))
        if not all(isinstance(value, int) for value in (seq, prev, at)) or \
                not isinstance(digest, str):
            raise CheckpointError(f"{origin}: claims chain_seq, hash, prev and iat are "
                                  "required")
        return Checkpoint(seq, digest, prev, at, _kid(token, origin), origin)


def _kid(token: str, origin: str) -> str:
    try:
        encoded = token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        return str(header["kid"])
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"{origin}: not a JWS with a kid") from exc
