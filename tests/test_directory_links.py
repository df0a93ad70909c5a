"""Former idNats continued under another one (psc.md §10, PSC's rule RG01), on SQLite and
PostgreSQL: a full extract without an ADELI idNat that one of its practitioners lists among
their Autres identifiants links it (devices moved, sessions ended, one audit record, not a
deactivation for the safeguard); an idNat listed by two practitioners, or by nobody, is
deactivated as gone; a linked idNat listed again comes back; the lineage of an idNat."""

import pytest
from sqlalchemy import select

from psc_idp import audit
from psc_idp.directory.columns import PSC_HEADER
from psc_idp.directory.importer import import_file
from psc_idp.directory.links import lineage
from psc_idp.directory.lookup import find_active
from psc_idp.directory.models import Practitioner
from psc_idp.directory.sync import sync_file
from psc_idp.ecps.models import Device
from psc_idp.extensions import db
from tests.directory_fixtures import directory_app, line, write_extract

ADELI, RPPS, OTHER = "0691234567", "899700412317", "899700412325"


@pytest.fixture
def app(keys_dir, database_url):
    yield from directory_app(keys_dir, database_url)


def psc_line(id_nat: str, others: str = "", **values) -> str:
    """A 51-column line listing ``others`` (``id,ORIGIN,quality;…``) as Autres identifiants."""
    return line(id_nat, **values) + f"{others or id_nat + ',RPPS,1'}|GENR01|"


def extract(tmp_path, name: str, lines: list[str]):
    return write_extract(tmp_path / name, lines, header=PSC_HEADER)


def device(id_nat: str, name: str) -> Device:
    return Device(id=name, id_nat=id_nat, public_jwk={}, thumbprint=name, label=name,
                  created_at=0, activated_by="card")


@pytest.fixture
def adeli_with_devices(app, tmp_path):
    """ADELI and OTHER in the directory; the ADELI professional has two phones."""
    import_file(extract(tmp_path, "day1.txt", [psc_line(ADELI, f"{ADELI},ADELI,1"),
                                              psc_line(OTHER)]))
    db.session.add_all([device(ADELI, "phone-1"), device(ADELI, "phone-2")])
    db.session.commit()


def test_the_adeli_that_left_is_linked_to_the_rpps_listing_it(adeli_with_devices, tmp_path):
    both = f"{RPPS},RPPS,1;{ADELI},ADELI,1"
    report = sync_file(extract(tmp_path, "day2.txt", [psc_line(RPPS, both),
                                                      psc_line(OTHER)]))
    assert (report.imported, report.linked, report.deactivated) == (1, 1, 0)
    db.session.expire_all()
    former = db.session.get(Practitioner, ADELI)
    assert (former.active, former.successor_id_nat) == (False, RPPS)
    assert find_active(ADELI) is None and find_active(RPPS) is not None
    assert sorted(d.id_nat for d in db.session.scalars(select(Device))) == [RPPS, RPPS]
    (record,) = db.session.scalars(select(audit.AuditEvent).where(
        audit.AuditEvent.event == "directory.linked")).all()
    assert (record.id_nat, record.detail["former_id_nat"], record.detail["devices_moved"]) == (
        RPPS, ADELI, 2)
    assert not db.session.scalars(select(audit.AuditEvent).where(
        audit.AuditEvent.event == "directory.deactivated")).all()
    assert lineage(RPPS) == [RPPS, ADELI] and lineage(ADELI) == [ADELI]
    assert audit.verify().ok


def test_linked_formers_are_not_deactivations_for_the_safeguard(adeli_with_devices,
                                                                tmp_path):
    # 1 of 2 active practitioners leaves: 50 %, far above the 5 % allowed
    both = f"{RPPS},RPPS,1;{ADELI},ADELI,1"
    report = sync_file(extract(tmp_path, "day2.txt", [psc_line(RPPS, both),
                                                      psc_line(OTHER)]), limit=5)
    assert report.linked == 1


def test_an_idnat_listed_by_two_practitioners_is_deactivated(adeli_with_devices, tmp_path):
    lines = [psc_line(RPPS, f"{RPPS},RPPS,1;{ADELI},ADELI,1"),
             psc_line(OTHER, f"{OTHER},RPPS,1;{ADELI},ADELI,1")]
    report = sync_file(extract(tmp_path, "day2.txt", lines), force=True)
    assert (report.linked, report.deactivated) == (0, 1)
    db.session.expire_all()
    assert db.session.get(Practitioner, ADELI).successor_id_nat is None
    assert {d.id_nat for d in db.session.scalars(select(Device))} == {ADELI}


def test_a_linked_idnat_listed_again_comes_back(adeli_with_devices, tmp_path):
    both = f"{RPPS},RPPS,1;{ADELI},ADELI,1"
    sync_file(extract(tmp_path, "day2.txt", [psc_line(RPPS, both), psc_line(OTHER)]))
    again = import_file(extract(tmp_path, "day3.txt", [psc_line(ADELI, both)]))
    assert again.updated == 1
    db.session.expire_all()
    back = db.session.get(Practitioner, ADELI)
    assert (back.active, back.successor_id_nat) == (True, None)


def test_partial_import_links_nobody(adeli_with_devices, tmp_path):
    both = f"{RPPS},RPPS,1;{ADELI},ADELI,1"
    report = import_file(extract(tmp_path, "part.txt", [psc_line(RPPS, both)]))
    assert report.linked == 0 and find_active(ADELI) is not None


def test_dry_run_counts_the_links(adeli_with_devices, tmp_path):
    from psc_idp.directory.dry_run import dry_run

    both = f"{RPPS},RPPS,1;{ADELI},ADELI,1"
    report, allowed = dry_run(extract(tmp_path, "day2.txt", [psc_line(RPPS, both),
                                                             psc_line(OTHER)]))
    assert (report.imported, report.linked, report.deactivated, allowed) == (1, 1, 0, True)
    assert find_active(ADELI) is not None
    assert db.session.scalar(select(Device.id_nat).where(Device.id == "phone-1")) == ADELI


def test_lineage_follows_a_chain(app, tmp_path):
    import_file(extract(tmp_path, "a.txt", [psc_line(ADELI, f"{ADELI},ADELI,1")]))
    sync_file(extract(tmp_path, "b.txt", [psc_line(OTHER, f"{OTHER},RPPS,1;{ADELI},ADELI,1")]),
              force=True)
    sync_file(extract(tmp_path, "c.txt", [psc_line(RPPS, f"{RPPS},RPPS,1;{OTHER},RPPS,1")]),
              force=True)
    assert lineage(RPPS) == [RPPS, OTHER, ADELI]
