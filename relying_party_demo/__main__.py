"""``python -m relying_party_demo [SANDBOX_DIR]``: the demo app on http://localhost:8000 with
the demo client that ``psc-idp sandbox init`` registered."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler

from . import create_app


def main() -> None:
    sandbox = Path(sys.argv[1] if len(sys.argv) > 1 else "var")
    try:
        client = json.loads((sandbox / "demo-client.json").read_text())
    except OSError as exc:
        sys.exit(f"relying_party_demo: no demo client in {sandbox} ({exc.strerror}); "
                 "run psc-idp sandbox init first")
    app = create_app({"issuer": client["issuer"], "client_id": client["client_id"],
                      "client_secret": client["client_secret"],
                      "ca_file": str(sandbox / "pki" / "tls-ca.pem")})
    print("relying_party_demo: http://localhost:8000/")
    app.run(host="localhost", port=8000, request_handler=PathOnlyLog)


class PathOnlyLog(WSGIRequestHandler):
    """Access log lines without query strings: the callback's carries the authorization
    code and state, which have no place in a log."""

    def log_request(self, code="-", size="-") -> None:
        path = self.path.split("?", 1)[0]
        self.log("info", '"%s %s %s" %s %s', self.command, path, self.request_version,
                 code, size)


if __name__ == "__main__":
    main()
