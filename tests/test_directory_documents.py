"""The stored ``scope_all`` claims (psc.md §3), on SQLite and PostgreSQL: every import writes
each practitioner's document as the claims built from the directory tables would be, key for
key and in order; userinfo's lookup is one query of one row; a client's spellings applied to
a stored document; the document follows the practitioner through updates, rejections,
deactivation, links and reactivation; a database migrated from the schema before them
serves them without a new import; ``directory rebuild-claims``; a change in any one column
writes the practitioner and their document again; values JSON must escape."""

import itertools
import json

import pytest
from sqlalchemy import event, func, select
from sqlalchemy import text as sa_text

from psc_idp.directory.claims import COMPAT_FLAGS, apply_compat, professional_claims
from psc_idp.directory.cli import directory
from psc_idp.directory.columns import COLUMNS, KEY, PSC_HEADER, UNUSED
from psc_idp.directory.importer import import_file
from psc_idp.directory.lookup import find_active, professional_document
from psc_idp.directory.models import (
    Activity,
    Exercice,
    OtherId,
    Practitioner,
    ProfessionalDocument,
    SavoirFaire,
)
from psc_idp.directory.sync import sync_file
from psc_idp.extensions import db
from tests.directory_fixtures import (
    BERARD,
    DEMO,
    DUPRE,
    KIT,
    LEFEVRE,
    PSC51,
    RASS50,
    SAMPLES,
    directory_app,
    line,
    write_extract,
)
from tests.test_directory_claims import EXAMPLE

JEAN, CLAIRE = "899700218896", "899700366240"
#: the revision before the stored claims
BEFORE = "b2e28d1f6fa0"


@pytest.fixture
def app(keys_dir, database_url):
    yield from directory_app(keys_dir, database_url)


def documents() -> dict[str, str]:
    """The stored documents by idNat, as JSON text (key order included)."""
    return dict(db.session.execute(select(ProfessionalDocument.id_nat,
                                          ProfessionalDocument.claims)).all())


def as_built_from_the_tables() -> dict[str, str]:
    """What ``professional_claims`` builds from the tables for each active practitioner."""
    db.session.expire_all()
    active = db.session.scalars(select(Practitioner.id_nat).where(
        Practitioner.active.is_(True))).all()
    return {id_nat: json.dumps(professional_claims(find_active(id_nat)), ensure_ascii=False,
                               separators=(",", ":")) for id_nat in active}


@pytest.mark.parametrize("path", [DEMO, PSC51, RASS50, *SAMPLES], ids=lambda p: p.name)
def test_every_import_stores_the_claims_the_tables_give(app, path):
    import_file(path)
    stored = documents()
    assert stored and stored == as_built_from_the_tables()
    for id_nat, text in stored.items():
        assert json.dumps(professional_document(id_nat), ensure_ascii=False,
                          separators=(",", ":")) == text


def test_the_demo_identity_is_psc_example_key_for_key(app):
    import_file(DEMO)
    document = professional_document(KIT)
    added = {"sub", "authMode", "Palier_Authentification"}
    assert {**document, **{k: EXAMPLE[k] for k in added}} == EXAMPLE
    assert list(document) == [k for k in EXAMPLE if k not in added]
    assert json.dumps(document["SubjectRefPro"]) == json.dumps(EXAMPLE["SubjectRefPro"])


def test_professional_document_is_one_query_of_one_row(app):
    import_file(DEMO)
    statements = []

    def listen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", listen)
    try:
        assert professional_document(JEAN)["SubjectNameID"] == JEAN
        assert professional_document("899700000005") is None
    finally:
        event.remove(db.engine, "before_cursor_execute", listen)
    assert len(statements) == 2
    assert all(" JOIN " not in statement.upper() for statement in statements)


@pytest.mark.parametrize("flags", [set(c) for n in range(4)
                                   for c in itertools.combinations(sorted(COMPAT_FLAGS), n)])
def test_compat_on_a_stored_document_is_compat_on_the_practitioner(app, flags):
    import_file(PSC51)
    import_file(DEMO)
    for id_nat in (BERARD, DUPRE, LEFEVRE, KIT):
        document = professional_document(id_nat)
        kept = json.dumps(document)
        expected = professional_claims(find_active(id_nat), compat=frozenset(flags))
        got = apply_compat(document, frozenset(flags | {"unknown"}))
        assert json.dumps(got) == json.dumps(expected)
        assert json.dumps(document) == kept  # a cached document is left as it was


def test_documents_follow_updates_rejections_and_deactivations(app, tmp_path):
    import_file(DEMO)
    jean = professional_document(JEAN)
    demo = DEMO.read_text(encoding="utf-8").splitlines()[1:]
    moved = [text.replace("CABINET INFIRMIER INFIRMIER0036624", "CABINET DES CHENES")
             for text in demo if f"|{KIT}|" not in text and f"|{JEAN}|" not in text]
    broken = line(JEAN).replace("|SA07|", "|SA07|x|", 1)
    sync_file(write_extract(tmp_path / "next.txt", [*moved, line(JEAN, c29="NOUVEAU"),
                                                    broken]), force=True)
    assert professional_document(KIT) is None  # deactivated
    assert professional_document(JEAN) == jean  # rejected: kept as it was
    assert professional_document(CLAIRE)["SubjectOrganization"] == "CABINET DES CHENES"
    assert documents() == as_built_from_the_tables()
    sync_file(DEMO, force=True)  # KIT is back
    assert professional_document(KIT)["SubjectOrganization"] == "CABINET M DOC0024566"
    assert documents() == as_built_from_the_tables()


def test_a_linked_former_idnat_has_no_document(app, tmp_path):
    adeli, rpps = "0691234567", "899700412317"
    header = {"header": PSC_HEADER}
    import_file(write_extract(tmp_path / "day1.txt", [
        line(adeli) + f"{adeli},ADELI,1|GENR01|", line(CLAIRE) + f"{CLAIRE},RPPS,1||"],
        **header))
    report = sync_file(write_extract(tmp_path / "day2.txt", [
        line(rpps) + f"{rpps},RPPS,1;{adeli},ADELI,1|GENR01|",
        line(CLAIRE) + f"{CLAIRE},RPPS,1||"], **header))
    assert report.linked == 1
    assert professional_document(adeli) is None
    assert [o["identifiant"] for o in professional_document(rpps)["otherIds"]] == [rpps, adeli]
    assert documents() == as_built_from_the_tables()


def test_a_database_from_before_serves_stored_claims_after_upgrade(app):
    """The migration builds the documents of the practitioners already imported."""
    from alembic import command

    from psc_idp.migrate import alembic_config

    for path in (DEMO, PSC51, RASS50):
        import_file(path)
    db.session.execute(Practitioner.__table__.update().where(Practitioner.id_nat == JEAN)
                       .values(active=False))
    db.session.commit()
    expected = as_built_from_the_tables()
    db.session.remove()
    command.downgrade(alembic_config(), BEFORE)
    command.upgrade(alembic_config(), "head")
    assert JEAN not in expected and documents() == expected
    assert professional_document(KIT) == json.loads(expected[KIT])
    assert professional_document(JEAN) is None


def test_rebuild_claims_command(app):
    import_file(DEMO)
    stored = documents()
    db.session.execute(ProfessionalDocument.__table__.delete())
    db.session.commit()
    result = app.test_cli_runner().invoke(directory, ["rebuild-claims"])
    assert (result.exit_code, result.output) == (
        0, "stored claims rebuilt for 4 active practitioners\n")
    assert documents() == stored
    assert db.session.scalar(select(func.count()).select_from(ProfessionalDocument)) == 4


def rows_of(id_nat: str) -> list[tuple]:
    """Every stored row of ``id_nat``, in every directory table."""
    db.session.expire_all()
    return [tuple(row) for model in (Practitioner, Exercice, SavoirFaire, Activity, OtherId)
            for row in db.session.execute(select(model.__table__).where(
                model.__table__.c.id_nat == id_nat))]


@pytest.mark.parametrize("column", [c.position - 1 for c in COLUMNS
                                    if c.part not in (KEY, UNUSED)],
                         ids=lambda at: PSC_HEADER[at])
def test_a_change_in_any_one_column_updates_the_practitioner_and_their_document(
        app, tmp_path, column):
    """An unchanged practitioner is skipped by its digest: one column changed on one of
    their lines (any column stored, the idNat aside) must still write them and their
    document."""
    header = {"header": PSC_HEADER}
    jean = [line(JEAN, c29="CABINET") + f"{JEAN},RPPS,1|GENR01|",
            line(JEAN, c13="60", c29="CLINIQUE") + f"{JEAN},RPPS,1|GENR01|"]
    claire = line(CLAIRE) + f"{CLAIRE},RPPS,1||"
    import_file(write_extract(tmp_path / "day1.txt", [*jean, claire], **header))
    before = rows_of(JEAN)
    fields = jean[0].split("|")  # the first line: its person columns are the ones kept
    fields[column] = "Z9"
    changed = "|".join(fields)
    report = import_file(write_extract(tmp_path / "day2.txt", [changed, jean[1], claire],
                                       **header))
    assert (report.imported, report.updated, report.unchanged) == (0, 1, 1)
    after = rows_of(JEAN)
    assert after != before
    assert "Z9" in {value for row in after for value in row}
    assert documents() == as_built_from_the_tables()


def test_values_json_escapes_are_stored_as_a_rebuild_writes_them(app, tmp_path):
    """Values with characters JSON escapes (quote, backslash, tab, line separator) or
    writes as they are (accents) in every column: the import's document is the one the
    tables give and the one ``rebuild-claims`` writes, compact JSON as ``json.dumps``
    writes it."""
    fields = line(JEAN).removesuffix("|").split("|") + [f"{JEAN},RPPS,1", "GENR01"]
    odd = [value if at in (0, 1, 2) else f'É"{at}\\ x\ty\u2028z' for at, value in
           enumerate(fields)]
    lines = ["|".join(odd) + "|", line(CLAIRE) + f"{CLAIRE},RPPS,1||"]
    report = import_file(write_extract(tmp_path / "odd.txt", lines, header=PSC_HEADER))
    assert (report.imported, report.rejected_lines) == (2, 0)
    stored = documents()
    assert stored == as_built_from_the_tables()
    assert '\\"' in stored[JEAN] and "\\t" in stored[JEAN] and "É" in stored[JEAN]
    for text in stored.values():
        assert json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":")) == text
    result = app.test_cli_runner().invoke(directory, ["rebuild-claims"])
    assert result.exit_code == 0
    assert documents() == stored


def test_documents_are_json_text_compressed_with_lz4_on_postgresql(app):
    import_file(DEMO)
    assert all(isinstance(text, str) and json.loads(text) for text in documents().values())
    if db.engine.dialect.name == "postgresql":  # built with lz4, as Debian's is
        # the documents over the TOAST threshold (about 2 kB) are compressed, the others not
        assert set(db.session.scalars(sa_text(
            "SELECT pg_column_compression(claims) FROM directory_document"))) == {"lz4", None}
