"""``psc-idp directory sync FILE``: a complete extract applied as a difference on SQLite and
PostgreSQL — creations, updates, deactivations last and behind a safeguard, a dry run that
writes nothing, resumption of an interrupted run, and a deactivated professional's
session and tokens ended (live server, real card login)."""

from itertools import takewhile

import pytest
from sqlalchemy import func, select

from psc_idp import audit
from psc_idp.directory.cli import directory
from psc_idp.directory.extract import open_extract
from psc_idp.directory.importer import ImportReport, apply_lines, import_file, start_run
from psc_idp.directory.lookup import find_active
from psc_idp.directory.models import (
    Activity,
    DirectoryImport,
    Exercice,
    OtherId,
    Practitioner,
    ProfessionalDocument,
    SavoirFaire,
)
from psc_idp.directory.sync import file_sha256, sync_file
from psc_idp.extensions import db
from psc_idp.oidc.models import LoginSession, Token
from tests.directory_fixtures import DEMO, KIT, SAMPLES, directory_app, line, write_extract
from tests.support import code_from

JEAN, CLAIRE, ROLEAU = "899700218896", "899700366240", "810107592585"


@pytest.fixture
def app(keys_dir, database_url):
    yield from directory_app(keys_dir, database_url)


def sync(app, *args):
    return app.test_cli_runner().invoke(directory, ["sync", *map(str, args)])


def without(path, id_nat, tmp_path):
    """The extract ``path`` minus the lines of ``id_nat``."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return write_extract(tmp_path / f"without-{id_nat}.txt",
                         [text for text in lines if f"|{id_nat}|" not in text])


def snapshot() -> dict:
    """Every directory row, the import runs and the audit trail's length."""
    db.session.expire_all()
    tables = {model.__tablename__: sorted(tuple(row) for row in db.session.execute(
        select(model.__table__))) for model in (Practitioner, Exercice, SavoirFaire, Activity,
                                                 OtherId, ProfessionalDocument,
                                                 DirectoryImport)}
    return tables | {"audit": db.session.scalar(select(func.count(audit.AuditEvent.id)))}


def test_real_samples_in_a_row(app, tmp_path):
    first = sync(app, SAMPLES[0])
    assert first.exit_code == 0  # the sample's doubtful practitioner: warnings
    assert first.stdout.startswith(f"{SAMPLES[0]}: 10 lines, practitioners: 5 imported, "
                                   "0 updated, 0 unchanged; 0 lines rejected, 2 warnings\n")
    assert sync(app, SAMPLES[1]).exit_code == 0
    third = sync(app, "--force", SAMPLES[2])  # 810107592544 is no longer in it
    assert (third.exit_code, third.stdout) == (0, f"{SAMPLES[2]}: 8 lines, practitioners: "
                                                  "0 imported, 0 updated, 4 unchanged, "
                                                  "1 deactivated; 0 lines rejected, "
                                                  "0 warnings\n")
    runs = db.session.scalars(select(DirectoryImport).order_by(DirectoryImport.id)).all()
    assert [(r.full, r.file_sha256, r.checkpoint_line, bool(r.read_at and r.finished_at))
            for r in runs] == [(True, file_sha256(path), end, True)
                               for path, end in zip(SAMPLES, (11, 11, 9), strict=True)]


def test_absent_practitioners_are_deactivated_behind_the_safeguard(app, tmp_path):
    assert sync(app, SAMPLES[2]).exit_code == 0
    smaller = without(SAMPLES[2], ROLEAU, tmp_path)
    refused = sync(app, smaller)
    assert refused.exit_code == 3
    assert refused.stderr.startswith(
        f"psc-idp: error: {smaller}: would deactivate 1 of 4 active practitioners (25.0 %, "
        "more than directory_sync_max_deactivated_percent = 5 %); nobody was deactivated")
    assert find_active(ROLEAU) is not None
    forced = sync(app, "--force", smaller)
    assert forced.exit_code == 0, forced.output
    assert forced.stdout == (f"{smaller}: resumed the interrupted sync after line 8\n"
                             f"{smaller}: 7 lines, practitioners: 0 imported, 0 updated, "
                             "3 unchanged, 1 deactivated; 0 lines rejected, 0 warnings\n")
    db.session.expire_all()
    assert find_active(ROLEAU) is None and db.session.get(Practitioner, ROLEAU) is not None
    back = sync(app, SAMPLES[2])
    assert "1 updated, 3 unchanged; 0 lines rejected, 0 warnings" in back.stdout
    assert find_active(ROLEAU) is not None


def test_dry_run_writes_nothing(app, tmp_path):
    import_file(DEMO)
    demo = DEMO.read_text(encoding="utf-8").splitlines()[1:]
    changed = [text.replace("CABINET MEDICAL DES TILLEULS", "CABINET DES CHENES")
               for text in demo if f"|{CLAIRE}|" not in text] + [line("899700000005")]
    path = write_extract(tmp_path / "next.txt", changed)
    before = snapshot()
    result = sync(app, "--dry-run", path)
    assert result.exit_code == 3
    assert result.stdout == (
        f"{path} (dry run, nothing written): 5 lines, practitioners: 1 imported, 1 updated, "
        "2 unchanged, 1 deactivated; 0 lines rejected, 0 warnings\n"
        f"{path}: the safeguard would refuse to deactivate 1 of 4 active practitioners "
        "(see --force)\n")
    assert snapshot() == before
    assert sync(app, "--dry-run", "--force", path).exit_code == 0
    applied = sync(app, "--force", path)
    assert applied.stdout.splitlines()[-1].endswith(
        ": 5 lines, practitioners: 1 imported, 1 updated, 2 unchanged, 1 deactivated; "
        "0 lines rejected, 0 warnings")


def test_dry_run_sees_lines_of_a_practitioner_apart(app, tmp_path):
    path = write_extract(tmp_path / "x.txt", [line(JEAN), line(CLAIRE), line(JEAN, c29="B")])
    result = sync(app, "--dry-run", path)
    assert result.exit_code == 1
    assert "line 4: practitioner 899700218896 already read earlier in this file" in result.stdout
    assert "2 imported" in result.stdout


def test_unreadable_or_cut_files_deactivate_nobody(app, tmp_path):
    import_file(DEMO)
    missing = sync(app, tmp_path / "missing.txt")
    assert (missing.exit_code, missing.stderr) == (
        2, f"psc-idp: error: {tmp_path / 'missing.txt'}: cannot read: No such file or directory\n")
    empty = sync(app, write_extract(tmp_path / "empty.txt", []))
    assert empty.exit_code == 3 and "would deactivate 4 of 4" in empty.stderr
    text = DEMO.read_bytes()
    cut = tmp_path / "cut.txt"
    cut.write_bytes(text[:len(text) * 2 // 3])  # a transfer that stopped mid-line
    result = sync(app, cut)
    assert result.exit_code == 3 and "expected 49 fields" in result.stdout  # kept as it was
    assert "would deactivate 2 of 4" in result.stderr  # the practitioners cut off
    assert all(find_active(i) for i in (KIT, JEAN, CLAIRE))


def test_an_interrupted_run_resumes_to_the_same_state(app, tmp_path):
    import_file(DEMO)
    demo = DEMO.read_text(encoding="utf-8").splitlines()[1:]
    lines = [_new_email(text) for text in demo if f"|{CLAIRE}|" not in text]
    path = write_extract(tmp_path / "next.txt", lines + [line("899700000005")])
    # what a run killed after its first two batches left: KIT and JEAN (lines 2-4) applied
    report = ImportReport(str(path))
    with open_extract(path) as extract:
        run_id = start_run(path, full=True, file_sha256=file_sha256(path))
        apply_lines(extract, takewhile(lambda item: item[0] <= 4, extract.lines), run_id,
                    report, batch_size=1)
    assert db.session.get(DirectoryImport, run_id).checkpoint_line == 4
    assert find_active(CLAIRE) is not None  # deactivations wait for the whole file
    resumed = sync_file(path, force=True)
    assert (resumed.resumed_after, resumed.lines, resumed.imported, resumed.updated,
            resumed.unchanged, resumed.deactivated) == (4, 5, 1, 3, 0, 1)
    interrupted = snapshot()
    uninterrupted = tmp_path / "again"
    uninterrupted.mkdir()
    db.session.execute(Practitioner.__table__.delete())  # cascades to the children
    for model in (Activity, SavoirFaire, Exercice, OtherId, ProfessionalDocument):
        db.session.execute(model.__table__.delete())
    db.session.commit()
    import_file(DEMO)
    straight = sync_file(path, force=True)
    assert (straight.resumed_after, straight.lines, straight.imported, straight.updated,
            straight.deactivated) == (None, 5, 1, 3, 1)
    assert _content(snapshot()) == _content(interrupted)


def _new_email(text: str) -> str:
    fields = text.split("|")
    fields[11] = "nouvelle@example.org"
    return "|".join(fields)


def _content(tables: dict) -> dict:
    """The directory as readers see it (not the timestamps and run ids)."""
    practitioners = [row[:11] for row in tables["directory_practitioner"]]  # to the digest
    return {"practitioners": practitioners,
            **{name: tables[name] for name in ("directory_exercice", "directory_savoir_faire",
                                               "directory_activity", "directory_other_id",
                                               "directory_document")}}


def test_deactivation_ends_the_session_and_revokes_the_tokens(idp, browser, demo_card,
                                                              tmp_path):
    rp = idp.rp()
    tokens = rp.exchange(code_from(browser.with_card(demo_card, rp.authorization_url()))[
        "code"]).json()
    assert rp.userinfo(tokens["access_token"]).status_code == 200
    result = idp.app.test_cli_runner().invoke(directory, ["sync", "--force",
                                                          str(without(DEMO, KIT, tmp_path))])
    assert result.exit_code == 0, result.output
    assert "1 deactivated" in result.stdout
    refused = rp.refresh(tokens["refresh_token"])
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    assert rp.userinfo(tokens["access_token"]).status_code == 401
    with idp.app.app_context():
        assert db.session.scalar(select(func.count()).where(
            Token.id_nat == KIT, Token.revoked_at.is_(None))) == 0
        assert db.session.scalar(select(func.count()).where(
            LoginSession.id_nat == KIT, LoginSession.ended_at.is_(None))) == 0
        (record,) = db.session.scalars(select(audit.AuditEvent).where(
            audit.AuditEvent.event == "directory.deactivated")).all()
        assert (record.id_nat, record.detail["sessions_ended"],
                record.detail["tokens_revoked"]) == (KIT, 1, 1)
        assert audit.verify().ok
    # no SSO session any more, and the card is refused: the professional left the directory
    status, _, page = browser.card_curl(demo_card, browser.start(rp.authorization_url()))
    assert status == 403 and 'data-reason="unknown_professional"' in page
