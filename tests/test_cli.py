"""The ``psc-idp`` command as an operator meets it: its help, one-line errors with exit
status 2 for usage errors, the missing configuration, access-token states, the audit
export (ISO 8601 dates, its event list checked against every record call in the code) and
the date until which a rotated client secret still works. Subprocesses run the real
command; the others run it on a real app and database."""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from psc_idp import audit, create_app
from psc_idp.admin import models as access_keys
from psc_idp.cli import main
from psc_idp.cli_support import NO_CONFIGURATION
from psc_idp.extensions import db

from .plugins.idp import REPO, base_settings

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
COMMANDS = ("admin", "audit", "clients", "db", "directory", "ecps", "housekeeping", "keys",
            "run", "sandbox")


def psc_idp(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: int = 60):
    """The real command in a child process, without any psc-idp configuration unless
    ``env`` gives some."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PSC_IDP_")}
    return subprocess.run([sys.executable, "-m", "psc_idp.cli", *args],
                          env={**base, **(env or {})}, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture
def app(keys_dir, sqlite_template, tmp_path):
    path = tmp_path / "idp.sqlite3"
    shutil.copy(sqlite_template, path)
    app = create_app(base_settings(keys_dir, f"sqlite:///{path}"))
    yield app
    with app.app_context():
        db.engine.dispose()


def run(app, *args):
    result = app.test_cli_runner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


# --- help and errors ----------------------------------------------------------------------

def test_help_shows_psc_idp_commands_only(tmp_path):
    done = psc_idp("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: psc-idp [OPTIONS] COMMAND [ARGS]...")
    options, commands = done.stdout.split("Options:\n")[1].split("Commands:\n")
    assert options.split() == ["--help", "Show", "this", "message", "and", "exit."]
    assert tuple(re.findall(r"^  ([a-z-]+) ", commands, re.MULTILINE)) == COMMANDS
    for flask_option in ("--env-file", "--app", "--debug", "-A", "-e"):
        assert flask_option not in done.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["frob"], "No such command 'frob'. (see psc-idp --help)"),
    (["clients", "frob"], "No such command 'frob'. (see psc-idp clients --help)"),
    (["clients", "rotate-secret"],
     "Missing argument 'CLIENT_ID'. (see psc-idp clients rotate-secret --help)"),
    (["clients", "list", "--frob"],
     "No such option '--frob'. (see psc-idp clients list --help)"),
    (["audit", "export"], "Missing option '--since'. (see psc-idp audit export --help)"),
    (["clients", "rotate-secret", "x", "--grace", "many"],
     "Invalid value for '--grace': 'many' is not a valid integer range. "
     "(see psc-idp clients rotate-secret --help)"),
])
def test_a_usage_error_is_one_line_and_status_2(tmp_path, args, message):
    done = psc_idp(*args, cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"psc-idp: error: {message}\n")


@pytest.mark.parametrize("args", [["clients", "list"], ["admin", "tokens"], ["keys", "list"],
                                  ["audit", "verify"], ["housekeeping"]])
def test_commands_say_when_there_is_no_configuration(tmp_path, args):
    done = psc_idp(*args, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"psc-idp: error: {NO_CONFIGURATION}\n"
    assert NO_CONFIGURATION == ("no configuration: set PSC_IDP_CONFIG or run psc-idp sandbox "
                                "init")


def test_a_bad_configuration_is_one_line_too(tmp_path):
    config = tmp_path / "psc-idp.toml"
    config.write_text('secret_key = "short"\n')
    done = psc_idp("clients", "list", env={"PSC_IDP_CONFIG": str(config)}, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == ("psc-idp: error: secret_key must be set to at least 32 random "
                           "characters\n")


# --- admin tokens ---------------------------------------------------------------------------

def test_admin_tokens_show_active_expired_and_revoked(app):
    ids = {}
    for label in ("current", "old", "withdrawn"):
        code, out, _ = run(app, "admin", "issue-token", "--label", label, "--expires", "1h")
        assert code == 0, out
        ids[label] = re.search(r"^id: (\S+)$", out, re.MULTILINE)[1]
    with app.app_context():  # an hour and a minute later for the 'old' token
        key = db.session.get(access_keys.AccessKey, ids["old"])
        key.expires_at -= 3660
        db.session.commit()
        old_expiry = key.expires_at
    assert run(app, "admin", "revoke-token", ids["withdrawn"])[0] == 0
    code, out, _ = run(app, "admin", "tokens")
    rows = {line.split("\t")[0]: line.split("\t") for line in out.splitlines()}
    assert code == 0
    assert {label: rows[key_id][4] for label, key_id in ids.items()} == {
        "current": "active", "old": "expired", "withdrawn": "revoked"}
    expiry = dt.datetime.fromtimestamp(old_expiry, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert rows[ids["old"]][3] == f"expires {expiry}"


# --- audit export -------------------------------------------------------------------------

def _emitted_events() -> set[str]:
    """Every event name a record call in psc_idp/ passes as a literal (first argument of
    audit.record, record_many, record_throttled) or as an ``event`` argument or default."""
    found = set()
    for path in (REPO / "psc_idp").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                if name in ("record", "record_many", "record_throttled") and node.args and \
                        isinstance(node.args[0], ast.Constant):
                    found.add((path, node.args[0].value))
                found |= {(path, k.value.value) for k in node.keywords if k.arg == "event"
                          and isinstance(k.value, ast.Constant)}
            elif isinstance(node, ast.arguments):
                named = node.args + node.kwonlyargs
                defaults = [None] * (len(node.args) - len(node.defaults)) + node.defaults + \
                    node.kw_defaults
                found |= {(path, d.value) for a, d in zip(named, defaults, strict=True)
                          if a.arg == "event" and isinstance(d, ast.Constant)}
    return found


def test_every_event_the_code_records_is_listed():
    emitted = _emitted_events()
    assert len({event for _, event in emitted}) >= 25  # the walk does find the calls
    unlisted = sorted(f"{path.relative_to(REPO)}: {event}" for path, event in emitted
                      if event not in audit.EVENTS)
    assert not unlisted
    assert {"login", "token.issued", "directory.imported", "directory.synced",
            "audit.aggregated"} <= {event for _, event in emitted}


def test_audit_export_dates_and_events(app):
    with app.app_context():
        audit.record("client.created", client_id="rp-1", actor="test")
        audit.record("access_key.issued", actor="test", key="k")
        db.session.commit()
    code, out, _ = run(app, "audit", "export", "--since", "2020-01-01T00:00:00Z",
                       "--event", "client.created")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["event"] for r in lines] == ["client.created"]
    assert ISO.fullmatch(lines[0]["at"])
    moment = dt.datetime.strptime(lines[0]["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert abs(moment - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    # the printed date is accepted back
    since = [json.loads(line) for line in
             run(app, "audit", "export", "--since", lines[0]["at"])[1].splitlines()]
    assert [r["event"] for r in since][-2:] == ["client.created", "access_key.issued"]
    assert all(r["at"] >= lines[0]["at"] for r in since)

    code, out, _ = run(app, "audit", "export", "--help")
    help_text = " ".join(out.split())
    assert code == 0 and all(f" {name} " in help_text for name in audit.EVENTS)

    code, out, err = run(app, "audit", "export", "--since", "2020-01-01", "--event", "frob")
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert err.startswith("psc-idp: error: Invalid value for '--event': unknown event 'frob'; "
                          "valid: login, login.abandoned, logout, ")
    assert all(name in err for name in audit.EVENTS)


# --- client secrets -----------------------------------------------------------------------

def test_rotate_secret_says_until_when_the_old_secret_works(app):
    from psc_idp.clients import create_client, find

    with app.app_context():
        client, old = create_client(name="rp", redirect_uris=["https://rp.example/cb"])
        client_id = client.client_id
    code, out, _ = run(app, "clients", "rotate-secret", client_id, "--grace", "3600")
    assert code == 0, out
    until = re.search(r"^old secret accepted until (\S+)$", out, re.MULTILINE)[1]
    assert ISO.fullmatch(until)
    with app.app_context():
        client = find(client_id)
        assert client.previous_secret_expires_at == int(dt.datetime.strptime(
            until, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp())
        assert client.check_client_secret(old)  # still works during the grace period
        client.previous_secret_expires_at = client.previous_secret_expires_at - 3601
        assert not client.check_client_secret(old)  # and no longer after that date
        db.session.rollback()
    code, out, _ = run(app, "clients", "rotate-secret", client_id, "--grace", "0")
    assert code == 0 and "old secret no longer accepted (no grace period)" in out
    code, out, _ = run(app, "clients", "rotate-secret", client_id, "--json")
    assert ISO.fullmatch(json.loads(out)["old_secret_accepted_until"])


# --- progress of long operations ----------------------------------------------------------

@pytest.fixture
def configured(keys_dir, sqlite_template, tmp_path) -> dict:
    """The environment of a configured psc-idp (TOML file, SQLite database)."""
    database = tmp_path / "idp.sqlite3"
    shutil.copy(sqlite_template, database)
    config = tmp_path / "psc-idp.toml"
    config.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in
                              base_settings(keys_dir, f"sqlite:///{database}").items()))
    return {"PSC_IDP_CONFIG": str(config)}


@pytest.mark.parametrize("command", [["directory", "import"], ["directory", "sync"]])
def test_directory_progress_on_a_terminal(configured, tmp_path, command):
    extract = REPO / "psc_idp" / "sandbox" / "demo_directory.txt"
    leader, follower = os.openpty()
    try:
        base = {k: v for k, v in os.environ.items() if not k.startswith("PSC_IDP_")}
        done = subprocess.run([sys.executable, "-m", "psc_idp.cli", *command, str(extract)],
                              env={**base, **configured}, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=follower, text=True, timeout=120, check=False)
        os.close(follower)
        shown = b""
        while chunk := _read(leader):
            shown += chunk
    finally:
        os.close(leader)
    assert done.returncode == 0, shown
    assert done.stdout.startswith(f"{extract}: 5 lines, practitioners: ")
    progress = shown.decode()
    assert progress.startswith(f"\r{extract}: line ") and progress.endswith("\r\n")
    assert re.search(r"line [0-9,]+/[0-9,]+, [0-9,]+ lines/s, ETA \d+:\d\d", progress)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:  # the other end closed (Linux: EIO)
        return b""


@pytest.mark.parametrize("command", [["directory", "import"], ["directory", "sync"]])
def test_directory_progress_is_quiet_in_a_pipe(configured, tmp_path, command):
    extract = REPO / "psc_idp" / "sandbox" / "demo_directory.txt"
    done = psc_idp(*command, str(extract), env=configured, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"{extract}: 5 lines, practitioners: ")
