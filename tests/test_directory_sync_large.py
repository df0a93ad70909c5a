"""``psc-idp directory sync`` on synthetic national extracts of 200,000 lines (80,000
practitioners), run as an operator runs it (the installed command, a child process) against
a live psc-idp on SQLite and PostgreSQL: the figures, a dry run that changes nothing, a run
killed halfway that deactivated nobody and resumes to the expected result, the refresh
token of a professional who left the directory refused, and the time and peak memory (RSS)
of each run, printed (``pytest -s``).

The two extracts are generated once per module (about 2 s)."""

from __future__ import annotations

import signal
import time

import pytest
from sqlalchemy import func, select

from psc_idp import audit
from psc_idp.directory.models import DirectoryImport, Practitioner
from psc_idp.extensions import db
from tests.directory_fixtures import DEMO, KIT
from tests.directory_synthetic import Operator, Run, practitioners_for, write_synthetic
from tests.support import code_from

LINES = 200_000
PRACTITIONERS = practitioners_for(LINES)  # 80,000
REMOVED = range(0, PRACTITIONERS, 100)  # 1 %: under the 5 % safeguard
CHANGED = range(50, PRACTITIONERS, 100)
ADDED = 400
#: peak RSS allowed to a sync child process, whatever the file size (MB)
MAX_RSS_MB = 200


@pytest.fixture(scope="module")
def extracts(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    demo = DEMO.read_text(encoding="utf-8").splitlines()[1:]
    first = write_synthetic(root / "first.txt", PRACTITIONERS, extra=demo)
    second = write_synthetic(root / "second.txt", PRACTITIONERS, removed=REMOVED,
                             changed=CHANGED, added=ADDED,
                             extra=[text for text in demo if f"|{KIT}|" not in text])
    assert first.lines == LINES
    return first, second


@pytest.fixture
def operator(keys_dir, database_url):
    return Operator(keys_dir, database_url)


def figures(app) -> dict:
    with app.app_context():
        count = select(func.count()).select_from(Practitioner)
        return {"practitioners": db.session.scalar(count),
                "inactive": db.session.scalar(count.where(Practitioner.active.is_(False))),
                "last_run": db.session.scalar(select(func.max(DirectoryImport.id))),
                "audit": db.session.scalar(select(func.count(audit.AuditEvent.id)))}


def report(label: str, run: Run) -> None:
    print(f"\n{label}: {run.seconds:.1f} s, peak RSS {run.rss_mb:.0f} MB")
    assert run.rss_mb < MAX_RSS_MB


def test_sync_200k_lines(idp, browser, demo_card, extracts, operator, database_url):
    first, second = extracts
    kind = database_url.split(":")[0].split("+")[0]
    rp = idp.rp()
    tokens = rp.exchange(code_from(browser.with_card(demo_card, rp.authorization_url()))[
        "code"]).json()

    created = operator.run("directory", "sync", first.path)
    assert created.code == 0, created.stderr
    assert created.stdout == (f"{first.path}: {LINES + 5} lines, practitioners: "
                              f"{PRACTITIONERS} imported, 0 updated, 4 unchanged; "
                              "0 lines rejected, 0 warnings\n")
    report(f"{kind}: sync of {LINES} lines, {PRACTITIONERS} creations", created)

    before = figures(idp.app)
    planned = operator.run("directory", "sync", "--dry-run", second.path)
    expected = (f"{second.lines + 4} lines, practitioners: {ADDED} imported, "
                f"{len(CHANGED)} updated, {second.practitioners - ADDED - len(CHANGED) + 3} "
                f"unchanged, {len(REMOVED) + 1} deactivated; 0 lines rejected, 0 warnings")
    assert (planned.code, planned.stdout) == (
        0, f"{second.path} (dry run, nothing written): {expected}\n")
    assert figures(idp.app) == before
    report(f"{kind}: dry run of {second.lines + 4} lines", planned)
    refreshed = rp.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200  # the dry run deactivated nobody

    child = operator.start("directory", "sync", second.path)
    checkpoint = _wait_for_a_checkpoint(idp.app, child, after_run=before["last_run"])
    child.send_signal(signal.SIGKILL)
    child.communicate()
    killed = figures(idp.app)
    assert killed["inactive"] == 0  # deactivations wait for the whole file

    resumed = operator.run("directory", "sync", second.path)
    assert resumed.code == 0, resumed.stderr
    (note, summary) = resumed.stdout.splitlines()
    assert note.startswith(f"{second.path}: resumed the interrupted sync after line ")
    assert int(note.rsplit(" ", 1)[1]) >= checkpoint
    assert summary == f"{second.path}: {expected}"
    report(f"{kind}: resumed sync of {second.lines + 4} lines (killed after line "
           f"{checkpoint})", resumed)

    after = figures(idp.app)
    assert (after["practitioners"], after["inactive"]) == (PRACTITIONERS + ADDED + 4,
                                                           len(REMOVED) + 1)
    gone = rp.refresh(refreshed.json()["refresh_token"])
    assert (gone.status_code, gone.json()["error"]) == (400, "invalid_grant")
    verified = operator.run("audit", "verify")
    assert verified.code == 0, verified.stderr


def _wait_for_a_checkpoint(app, child, after_run: int) -> int:
    """The first line a batch of the running sync (a run after ``after_run``) committed."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()
        with app.app_context():
            line = db.session.scalar(select(DirectoryImport.checkpoint_line).where(
                DirectoryImport.id > after_run))
            db.session.remove()
        if line:
            return line
        time.sleep(0.05)
    raise AssertionError("no checkpoint within 120 s")
