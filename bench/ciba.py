"""CIBA without enumeration, measured: the backchannel authentication endpoint's latency for
a professional with an e-CPS phone, one without, and an idNat the directory does not know —
the three must be indistinguishable (the same answer, the same work: a decoy request for the
last two) — and the poll's latency.

    .venv/bin/python bench/ciba.py [--requests 300] [--json FILE]

psc-idp runs under gunicorn (one worker, 4 threads) on a private PostgreSQL, as in
``bench/run.py``, with its default limits; one Python thread asks in turn for each kind of
idNat (interleaved, so that drift hits all three alike), as a new client every
``PER_CLIENT`` rounds (a client asking one idNat more often is rate limited). Prints, per
kind, p50 / p90 / p99 in milliseconds and the answer's keys and status; then each kind's
median against the phone's, and the share of requests a threshold on latency would
classify right (50 %: no signal)."""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.servers import PscIdp  # noqa: E402
from tests.plugins.postgres import PostgresServer  # noqa: E402

#: requests per client and idNat (below ecps_rate_per_id_nat and ecps_max_failures)
PER_CLIENT = 4
KINDS = {"phone": "899700245667", "no phone": "899700218896", "unknown": "810000000009"}


def enrol(app, id_nat: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec
    from joserfc.jwk import ECKey

    from psc_idp.ecps.models import Device
    from psc_idp.extensions import db
    from psc_idp.oidc.models import now

    key = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
    with app.app_context():
        db.session.add(Device(id=secrets.token_urlsafe(16), id_nat=id_nat,
                              public_jwk=key.as_dict(private=False), thumbprint=key.thumbprint(),
                              label="bench phone", created_at=now(), status="active",
                              activated_by="card"))
        db.session.commit()


def ciba_clients(app, count: int) -> list[tuple[str, str]]:
    from psc_idp.clients import create_client

    with app.app_context():
        made = [create_client(name=f"bench ciba {n}", redirect_uris=["https://rp/cb"],
                              backchannel_token_delivery_mode="poll") for n in range(count)]
        return [(client.client_id, secret) for client, secret in made]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def best_split(a: list[float], b: list[float]) -> float:
    """The share of ``a`` + ``b`` a latency threshold classifies right at best (0.5: none)."""
    labelled = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    best, below_a, below_b = 0.5, 0, 0
    for _, label in labelled:
        below_a += label == 0
        below_b += label == 1
        right = max(below_a + (len(b) - below_b), below_b + (len(a) - below_a))
        best = max(best, right / len(labelled))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="per kind")
    parser.add_argument("--json")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="psc-idp-bench-ciba-"))
    postgres = PostgresServer()
    postgres.start()
    idp = PscIdp(tmp, postgres)
    try:
        idp.prepare()
        enrol(idp.app, KINDS["phone"])
        # the default limits hold (ecps_rate_per_id_nat: 10 per idNat and client per 10
        # minutes): the requests come from many clients, as in production
        clients = ciba_clients(idp.app, (args.requests + 10) // PER_CLIENT + 1)
        idp.start(1)
        url = idp.issuer + "/protocol/openid-connect/ext/ciba/auth"
        session = requests.Session()
        timings = {kind: [] for kind in KINDS}
        answers = {kind: set() for kind in KINDS}
        ids = {}
        for round_ in range(args.requests + 10):
            session.auth = clients[round_ // PER_CLIENT]
            for kind, id_nat in KINDS.items():
                started = time.perf_counter()
                answer = session.post(url, data={
                    "scope": "openid scope_all", "login_hint": id_nat,
                    "binding_message": f"{round_ % 100:02d}"}, timeout=10)
                elapsed = (time.perf_counter() - started) * 1000
                if round_ >= 10:  # warm-up
                    timings[kind].append(elapsed)
                answers[kind].add((answer.status_code, tuple(sorted(answer.json()))))
                ids[kind] = answer.json().get("auth_req_id")
        polls = []
        token_url = idp.issuer + "/protocol/openid-connect/token"
        for _ in range(50):
            time.sleep(1.05)
            started = time.perf_counter()
            session.post(token_url, data={"grant_type": "urn:openid:params:grant-type:ciba",
                                          "auth_req_id": ids["phone"]}, timeout=10)
            polls.append((time.perf_counter() - started) * 1000)
    finally:
        idp.stop()
        postgres.stop()
    report = {}
    print(f"{'kind':<10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}  answers")
    for kind, values in timings.items():
        report[kind] = {"p50": percentile(values, .5), "p90": percentile(values, .9),
                        "p99": percentile(values, .99), "answers": sorted(answers[kind])}
        print(f"{kind:<10} {report[kind]['p50']:8.2f} {report[kind]['p90']:8.2f} "
              f"{report[kind]['p99']:8.2f}  {sorted(answers[kind])}")
    for kind in ("no phone", "unknown"):
        split = best_split(timings["phone"], timings[kind])
        ratio = statistics.median(timings[kind]) / statistics.median(timings["phone"])
        report[f"phone vs {kind}"] = {"median_ratio": ratio, "best_threshold_accuracy": split}
        print(f"phone vs {kind}: median ×{ratio:.3f}, a latency threshold classifies "
              f"{split:.1%} right (50% = no signal)")
    report["poll"] = {"p50": percentile(polls, .5), "p99": percentile(polls, .99)}
    print(f"poll (authorization_pending): p50 {report['poll']['p50']:.2f} ms, "
          f"p99 {report['poll']['p99']:.2f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
