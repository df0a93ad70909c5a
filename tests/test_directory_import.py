"""Importing extracts into SQLite and PostgreSQL: figures on the real samples and on PSC's
50- and 51-column extracts, warnings and rejections, idempotence, updates,
whole-practitioner rejection for an unusable line, deactivation by a full extract, and
login lookup."""

import pytest
from sqlalchemy import event, select, text

from psc_idp.directory.claims import professional_claims
from psc_idp.directory.columns import PSC_HEADER
from psc_idp.directory.importer import import_file, import_files
from psc_idp.directory.lookup import find_active
from psc_idp.directory.models import DirectoryImport, OtherId, Practitioner
from psc_idp.extensions import db
from tests.directory_fixtures import (
    DEMO,
    DUPRE,
    KIT,
    LEFEVRE,
    LEFEVRE_ADELI,
    MENARD,
    PSC51,
    PSI_ID,
    RASS50,
    SAMPLES,
    directory_app,
    line,
    row_counts,
    write_extract,
)

JEAN, CLAIRE = "899700218896", "899700366240"
MISMATCH = "idNat 810107592544 does not match identifier type 8 + identifier 10107582544"
LUHN = "RPPS 10107582544 has a wrong check digit (Luhn)"


@pytest.fixture
def app(keys_dir, database_url):
    yield from directory_app(keys_dir, database_url)


def figures(report):
    return (report.lines, report.imported, report.updated, report.unchanged,
            report.rejected_practitioners, report.rejected_lines, report.warnings)


@pytest.mark.parametrize("sample, expected, warnings", [
    (0, (10, 5, 0, 0, 0, 0, 2), [(10, MISMATCH), (10, LUHN)]),
    (1, (10, 5, 0, 0, 0, 0, 2), [(10, MISMATCH), (10, LUHN)]),
    (2, (8, 4, 0, 0, 0, 0, 0), []),
])
def test_real_samples(app, sample, expected, warnings):
    """PSC's loader takes the line whose idNat disagrees with its identifier: so does
    psc-idp, with warnings."""
    report = import_file(SAMPLES[sample])
    assert figures(report) == expected
    assert report.rejections == []
    assert [(w.line, w.message) for w in report.warning_list] == warnings
    stored = 5 if warnings else 4
    assert row_counts() == {"directory_practitioner": stored, "directory_exercice": stored,
                            "directory_savoir_faire": 0, "directory_activity": 2 * stored,
                            "directory_other_id": 0}
    assert (find_active("810107592544") is not None) == bool(warnings)


def test_successive_daily_samples(app):
    reports = [import_file(path) for path in SAMPLES]
    assert [figures(r) for r in reports] == [
        (10, 5, 0, 0, 0, 0, 2), (10, 0, 0, 5, 0, 0, 2), (8, 0, 0, 4, 0, 0, 0)]
    runs = db.session.scalars(select(DirectoryImport).order_by(DirectoryImport.id)).all()
    assert [(run.lines, run.unchanged, run.rejected_lines, run.warnings) for run in runs] == [
        (10, 0, 0, 2), (10, 5, 0, 2), (8, 4, 0, 0)]
    assert all(run.finished_at for run in runs)


def test_sample_practitioners_as_stored(app):
    import_file(SAMPLES[0])
    evrard = find_active("0012800728")
    assert (evrard.id_type, evrard.identifier, evrard.given_name) == ("0", "012800728", "Patrice")
    (exercice,) = evrard.exercices
    assert [a.structure_id for a in exercice.activities] == [
        "C39806996300013", "C39806996300054", "C39806996300070", "C39806996300062"]
    pingot = find_active("0010000206")
    assert [a.mode_exercice for a in pingot.exercices[0].activities] == ["L", "S"]
    roleau = find_active("810107592585")
    (activity,) = roleau.exercices[0].activities
    assert (activity.mode_exercice, activity.autorite_enregistrement) == ("", "CNOMK//")


def test_reimport_is_idempotent(app):
    first = import_files([DEMO])
    counts, claims = row_counts(), claims_of(KIT, JEAN, CLAIRE)
    second = import_files([DEMO])
    assert (first.imported, second.imported, second.updated, second.unchanged) == (4, 0, 0, 4)
    assert row_counts() == counts == {"directory_practitioner": 4, "directory_exercice": 4,
                                      "directory_savoir_faire": 2, "directory_activity": 5,
                                      "directory_other_id": 0}
    assert claims_of(KIT, JEAN, CLAIRE) == claims


def claims_of(*id_nats):
    db.session.expire_all()
    return [professional_claims(find_active(id_nat)) for id_nat in id_nats]


def test_update_replaces_the_practitioner_as_a_whole(app, tmp_path):
    import_file(DEMO)
    created = db.session.get(Practitioner, JEAN).created_at
    demo = DEMO.read_text(encoding="utf-8").splitlines()
    jean = [text for text in demo if text.startswith("8|99700218896|")]
    moved = jean[1].replace("CENTRE HOSPITALIER DE DEMONSTRATION", "CHU DE DEMONSTRATION")
    lines = [moved if text == jean[1] else text for text in demo[1:] if text != jean[0]]
    report = import_file(write_extract(tmp_path / "changed.txt", lines))
    assert (report.imported, report.updated, report.unchanged) == (0, 1, 3)
    db.session.expire_all()
    practitioner = find_active(JEAN)
    assert [(a.mode_exercice, a.raison_sociale) for a in practitioner.exercices[0].activities
            ] == [("S", "CHU DE DEMONSTRATION")]
    assert row_counts()["directory_activity"] == 4
    assert practitioner.created_at == created


def test_bad_line_leaves_no_half_written_practitioner(app, tmp_path):
    import_file(DEMO)
    before = claims_of(JEAN)
    broken = line(JEAN, c13="10", c29="NOUVEAU CABINET").replace("|SA07|", "|SA07|x|", 1)
    path = write_extract(tmp_path / "x.txt", [line(JEAN, c29="NOUVEAU CABINET"), broken,
                                              line("899700000005")])
    report = import_file(path)
    assert (report.imported, report.updated, report.rejected_practitioners) == (1, 0, 1)
    assert [r.line for r in report.rejections] == [2, 3]
    assert claims_of(JEAN) == before
    assert find_active("899700000005") is not None


def test_new_practitioner_with_an_unusable_line_is_not_created(app, tmp_path):
    cut = line(CLAIRE, c29="B").rsplit("|", 20)[0]
    path = write_extract(tmp_path / "x.txt", [line(CLAIRE), cut])
    report = import_file(path)
    assert {r.line: r.reason for r in report.rejections} == {
        2: f"rejected with practitioner {CLAIRE} (see line 3)",
        3: "expected 49 fields, found 30"}
    assert report.imported == 0
    assert row_counts()["directory_practitioner"] == 0


@pytest.mark.parametrize("batch_size", [1, 500])
def test_lines_of_a_practitioner_must_follow_each_other(app, tmp_path, batch_size):
    path = write_extract(tmp_path / "x.txt", [line(JEAN), line(CLAIRE), line(JEAN, c29="B")])
    report = import_file(path, batch_size=batch_size)
    assert (report.imported, report.rejected_lines) == (2, 1)
    assert report.rejections[0].line == 4
    assert "already read earlier in this file" in report.rejections[0].reason


def test_full_extract_deactivates_the_absent(app, tmp_path):
    import_file(DEMO)
    only_kit = write_extract(tmp_path / "full.txt", [DEMO.read_text().splitlines()[1]])
    report = import_file(only_kit, full=True)
    assert (report.unchanged, report.deactivated) == (1, 3)
    assert find_active(JEAN) is None and find_active(CLAIRE) is None
    assert find_active(KIT) is not None
    assert db.session.get(Practitioner, JEAN).active is False
    again = import_file(DEMO)
    assert (again.updated, again.unchanged) == (3, 1)
    assert find_active(JEAN) is not None


def test_partial_import_deactivates_nobody(app, tmp_path):
    import_file(DEMO)
    import_file(write_extract(tmp_path / "one.txt", [line(CLAIRE, c3="INFIRMIER0036624")]))
    assert all(find_active(i) for i in (KIT, JEAN, CLAIRE))


def test_find_active_is_one_query_and_loads_what_claims_need(app):
    import_file(DEMO)
    db.session.expire_all()
    statements = []

    def listen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", listen)
    try:
        professional_claims(find_active(JEAN))
    finally:
        event.remove(db.engine, "before_cursor_execute", listen)
    assert len(statements) == 1
    assert find_active("899700000005") is None


def refuse_structure(name: str) -> None:
    """A real database trigger refusing activities at structure ``name``."""
    if db.engine.dialect.name == "sqlite":
        ddl = [f"CREATE TRIGGER refuse BEFORE INSERT ON directory_activity "
               f"WHEN NEW.raison_sociale = '{name}' BEGIN SELECT RAISE(ABORT, 'refused'); END"]
    else:
        ddl = [f"CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
               f"IF NEW.raison_sociale = '{name}' THEN RAISE EXCEPTION 'refused'; END IF; "
               "RETURN NEW; END $$",
               "CREATE TRIGGER refuse BEFORE INSERT ON directory_activity "
               "FOR EACH ROW EXECUTE FUNCTION refuse()"]
    for statement in ddl:
        db.session.execute(text(statement))
    db.session.commit()


def test_practitioner_the_database_refuses_is_rejected_alone(app, tmp_path):
    import_file(DEMO)
    refuse_structure("REFUSED")
    path = write_extract(tmp_path / "x.txt", [
        line(KIT, c29="ACCEPTED"), line(JEAN, c29="REFUSED"), line(CLAIRE, c29="ACCEPTED"),
        line("899700000005", c29="REFUSED")])
    report = import_file(path)
    assert (report.updated, report.imported, report.rejected_practitioners) == (2, 0, 2)
    assert [r.line for r in report.rejections] == [3, 5]
    assert report.rejections[0].reason.startswith("refused by the database: ")
    db.session.expire_all()
    assert claims_of(JEAN)[0]["SubjectOrganization"] == "CABINET MEDICAL DES TILLEULS"
    assert claims_of(KIT)[0]["SubjectOrganization"] == "ACCEPTED"
    assert find_active("899700000005") is None


# --- PSC's current extracts (psc.md §10) ---------------------------------------------------

@pytest.mark.parametrize("batch_size", [1, 2, 500])
def test_psc_51_column_extract(app, batch_size):
    """Every person is imported, whatever the batch size: a person's interleaved lines
    (RPPS and ADELI) are never split between two batches."""
    report = import_file(PSC51, batch_size=batch_size)
    assert figures(report) == (11, 6, 0, 0, 0, 0, 0)
    assert row_counts() == {"directory_practitioner": 6, "directory_exercice": 5,
                            "directory_savoir_faire": 2, "directory_activity": 8,
                            "directory_other_id": 8}
    run = db.session.scalars(select(DirectoryImport)).one()
    assert run.checkpoint_line == 12
    stored = db.session.execute(select(OtherId.identifier, OtherId.origin, OtherId.quality)
                                .where(OtherId.id_nat == LEFEVRE_ADELI)
                                .order_by(OtherId.rank)).all()
    assert stored == [(LEFEVRE, "RPPS", 1), (LEFEVRE_ADELI, "ADELI", 1)]
    psi = find_active(PSI_ID)
    assert (psi.id_type, psi.identifier) == ("", PSI_ID)
    assert find_active(DUPRE).exercices == [] and find_active(DUPRE).phone == "+33 633333333"
    again = import_file(PSC51, batch_size=batch_size)
    assert (again.imported, again.updated, again.unchanged) == (0, 0, 6)


def test_windows_1252_50_column_extract(app):
    report = import_file(RASS50)
    assert figures(report) == (6, 4, 0, 0, 2, 2, 3)
    menard = find_active(MENARD)
    assert (menard.given_name, menard.exercices[0].activities[0].genre_activite) == (
        "HÉLÈNE", "GENR01")
    assert find_active("075123456") is not None  # an 8-character ADELI: PSC takes it too
    assert db.session.scalars(select(DirectoryImport)).one().warnings == 3


def test_changed_other_identifiers_update_the_practitioner(app, tmp_path):
    import_file(PSC51)
    lines = PSC51.read_text(encoding="utf-8").splitlines()[1:]
    dupre = [text.replace(f"|{DUPRE},RPPS,1|", f"|{DUPRE},RPPS,1;0691111111,ADELI,1|")
             for text in lines]
    report = import_file(write_extract(tmp_path / "x.txt", dupre, header=PSC_HEADER))
    assert (report.updated, report.unchanged) == (1, 5)
    assert [o.identifier for o in find_active(DUPRE).other_ids] == [DUPRE, "0691111111"]
