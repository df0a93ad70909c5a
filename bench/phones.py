"""The phones workload's load generator: N enrolled e-CPS phones long-polling the channel
(``psc-idp ecps channel``) at once, as the app does — a fresh ``ecps-auth+jwt`` per poll,
``wait=25``, poll again when the answer comes — and approving the requests they are shown
with the code the login page would show (number matching, ``POST /ecps/api/decision`` to
psc-idp).

The benchmark (``bench/run.py phones``) enrols the phones (one per synthetic practitioner,
device rows written with psc-idp's models), starts this generator in a child process on
the load CPU, then, while wrk drives code exchanges, starts login requests for a sample of
the professionals through psc-idp's own ``start_login`` (another process: the phone learns
of it through the database) and tells the generator each request's code on stdin. The
generator prints ``ready`` and the polls under way once every phone has polled (after a
few seconds of ramp), and at the end (stdin
closed) one JSON line: polls, failures by kind, when each request reached its phone,
decisions by status, and the phones connected and waiting on a poll when stdin closed.

    python bench/phones.py --devices FILE --channel URL --idp URL   (child)"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import resource
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

WAIT = 25       # seconds a poll waits (the API's maximum)
SLACK = 10      # beyond WAIT, a poll without an answer is a failure (timeout)
RAMP = 5.0      # seconds over which the phones connect
# A phone's first poll waits a random 1..WAIT s, so that from RAMP on the phones poll again
# evenly (N / WAIT polls a second, each authenticated by the channel), as a fleet of phones
# does, rather than all at once WAIT s after the start.


# --- the benchmark's side ---------------------------------------------------------------------

def extract(tmp: Path, count: int) -> Path:
    """A directory extract of ``count`` practitioners (tests/directory_synthetic.py)."""
    from tests.directory_synthetic import write_synthetic

    return write_synthetic(tmp / "phones-extract.txt", count).path


def enrol(app, count: int, path: Path) -> list[dict]:
    """One active device per synthetic practitioner; their private keys go to ``path``."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from joserfc.jwk import ECKey

    from psc_idp.ecps.models import Device
    from psc_idp.extensions import db
    from psc_idp.oidc.models import now
    from tests.directory_synthetic import id_nat

    phones = []
    with app.app_context():
        for index in range(count):
            key = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
            device = Device(id=secrets.token_urlsafe(16), id_nat=id_nat(index),
                            public_jwk=key.as_dict(private=False),
                            thumbprint=key.thumbprint(), label="bench phone",
                            created_at=now(), status="active", activated_by="card")
            db.session.add(device)
            phones.append({"device_id": device.id, "id_nat": device.id_nat,
                           "key": key.as_dict(private=True)})
        db.session.commit()
    path.write_text(json.dumps(phones))
    return phones


def start_login(app, id_nat: str):
    """A login request for ``id_nat``, as the login page starts it."""
    from psc_idp.ecps.login_requests import start_login as start

    with app.app_context():
        request = start(secrets.token_urlsafe(24), "bench", id_nat, "bench", "192.0.2.0/24")
        return request.id, request.code


# --- the generator (child process) ------------------------------------------------------------

class Generator:
    def __init__(self, phones: list[dict], channel: str, idp: str):
        from joserfc.jwk import ECKey

        self.phones = [{**p, "key": ECKey.import_key(p["key"])} for p in phones]
        self.channel, self.idp = urlsplit(channel), urlsplit(idp)
        self.polls = self.outstanding = self.connected = self.first_polls = 0
        self.at_end = {"connected": 0, "waiting": 0}
        self.failures: collections.Counter = collections.Counter()
        self.decisions: collections.Counter = collections.Counter()
        self.received: dict[str, float] = {}
        self.codes: dict[str, asyncio.Future] = {}
        self.stopping = asyncio.Event()

    def _sign(self, phone: dict, typ: str, claims: dict) -> str:
        from joserfc import jwt

        return jwt.encode({"alg": "ES256", "typ": typ, "kid": phone["device_id"]}, claims,
                          phone["key"])

    def _auth(self, phone: dict) -> str:
        issued = int(time.time())
        return self._sign(phone, "ecps-auth+jwt", {
            "iss": phone["device_id"], "aud": self.idp.geturl(), "iat": issued,
            "exp": issued + 60, "jti": secrets.token_urlsafe(16)})

    def _code(self, request_id: str) -> asyncio.Future:
        return self.codes.setdefault(request_id, asyncio.get_running_loop().create_future())

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._phone(p, RAMP * i / len(self.phones)))
                 for i, p in enumerate(self.phones)]
        asyncio.create_task(self._ready())
        await self._read_codes()
        self.at_end = {"connected": self.connected, "waiting": self.outstanding}
        self.stopping.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _ready(self) -> None:
        await asyncio.sleep(RAMP)
        deadline = time.monotonic() + 30
        while self.first_polls < len(self.phones) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        print(f"ready {self.outstanding}", flush=True)

    async def _read_codes(self) -> None:
        """``code <request> <code>`` lines from the benchmark; the end of stdin stops us."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            _, request_id, code = line.decode().split()
            future = self._code(request_id)
            if not future.done():
                future.set_result(code)

    async def _phone(self, phone: dict, delay: float) -> None:
        await asyncio.sleep(delay)
        seen: set[str] = set()
        connection, wait, first = None, random.randint(1, WAIT), True
        while not self.stopping.is_set():
            if first:
                self.first_polls, first = self.first_polls + 1, False
            try:
                if connection is None:
                    connection = await asyncio.open_connection(self.channel.hostname,
                                                               self.channel.port)
                    self.connected += 1
                status, body = await self._poll(connection, phone, wait)
                wait = WAIT
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                self.failures[type(exc).__name__] += 1
                if connection is not None:
                    self.connected -= 1
                connection = _close(connection)
                await asyncio.sleep(1)
                continue
            if status != 200:
                self.failures[f"HTTP {status}"] += 1
                await asyncio.sleep(1)
                continue
            for request in json.loads(body)["requests"]:
                if request["request"] not in seen:
                    seen.add(request["request"])
                    self.received[request["request"]] = time.time()
                    asyncio.create_task(self._approve(phone, request))

    async def _poll(self, connection, phone: dict, wait: int) -> tuple[int, bytes]:
        reader, writer = connection
        writer.write(f"GET {self.channel.path}/ecps/api/pending?wait={wait} HTTP/1.1\r\n"
                     f"Host: {self.channel.netloc}\r\n"
                     f"Authorization: ECPS {self._auth(phone)}\r\n\r\n".encode())
        self.outstanding += 1
        try:
            answer = await asyncio.wait_for(_response(reader), wait + SLACK)
        finally:
            self.outstanding -= 1
        self.polls += 1
        return answer

    async def _approve(self, phone: dict, request: dict) -> None:
        try:
            code = await asyncio.wait_for(asyncio.shield(self._code(request["request"])), 10)
        except TimeoutError:
            self.decisions["no code"] += 1
            return
        body = json.dumps({"decision": self._sign(phone, "ecps-decision+jwt", {
            "request": request["request"], "nonce": request["nonce"], "decision": "approve",
            "code": code, "iat": int(time.time())})}).encode()
        try:
            reader, writer = await asyncio.open_connection(self.idp.hostname, self.idp.port)
            writer.write(f"POST {self.idp.path}/ecps/api/decision HTTP/1.1\r\n"
                         f"Host: {self.idp.netloc}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                         .encode() + body)
            status, answer = await asyncio.wait_for(_response(reader), 30)
            writer.close()
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            self.decisions[type(exc).__name__] += 1
            return
        self.decisions[json.loads(answer).get("status", f"HTTP {status}")] += 1

    def results(self) -> dict:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {"phones": len(self.phones), "polls": self.polls, **self.at_end,
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
                "failures": dict(self.failures), "received": self.received,
                "decisions": dict(self.decisions)}


async def _response(reader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next((int(line.split(":", 1)[1]) for line in lines
                   if line.lower().startswith("content-length:")), 0)
    return int(lines[0].split()[1]), await reader.readexactly(length)


def _close(connection) -> None:
    if connection:
        connection[1].close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", required=True)
    parser.add_argument("--channel", required=True, help="the channel's issuer URL")
    parser.add_argument("--idp", required=True, help="psc-idp's issuer URL (decisions)")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    generator = Generator(json.loads(Path(args.devices).read_text()), args.channel, args.idp)
    asyncio.run(generator.run())
    print(json.dumps(generator.results()), flush=True)


if __name__ == "__main__":
    main()
