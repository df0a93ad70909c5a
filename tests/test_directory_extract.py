"""Reading extract files (psc.md §8, §10): header, encodings, line endings, grouping of a
practitioner's lines, warnings for what PSC accepts, and the rejection of a practitioner
with an unusable line; the digest of a practitioner; reading ahead of the writes."""

import dataclasses
import hashlib
import itertools
import json
import threading
import time

import pytest

from psc_idp.directory.columns import GENRE_HEADER, HEADER, PSC_HEADER
from psc_idp.directory.extract import Entry, ExtractError, Rejected, entries, open_extract
from psc_idp.directory.readahead import read_ahead
from tests.directory_fixtures import (
    BERARD,
    DUPRE,
    EDIT_ID,
    GARCON,
    LEFEVRE,
    LEFEVRE_ADELI,
    MENARD,
    PSC51,
    PSI_ID,
    RASS50,
    SAMPLES,
    line,
    variant,
    write_extract,
)


def read(path):
    with open_extract(path) as extract:
        return list(entries(extract.lines, extract.layout))


def test_sample_groups_lines_by_practitioner():
    found = read(SAMPLES[0])
    assert [item.id_nat for item in found] == [
        "0012800736", "0012800728", "0010000206", "810107592585", "810107592544"]
    evrard = found[1]
    assert evrard.lines == [3, 4, 5, 6]
    (exercice,) = evrard.exercices.values()
    assert len(exercice.activities) == 4
    assert found[-1].warnings == [
        (10, "idNat 810107592544 does not match identifier type 8 + identifier 10107582544"),
        (10, "RPPS 10107582544 has a wrong check digit (Luhn)")]


def test_bom_crlf_and_no_final_newline_read_like_the_plain_file(tmp_path):
    plain = SAMPLES[0].read_bytes()
    variant = tmp_path / "variant.txt"
    variant.write_bytes(b"\xef\xbb\xbf" + plain.replace(b"\n", b"\r\n").rstrip(b"\r\n"))
    assert read(variant) == read(SAMPLES[0])


@pytest.mark.parametrize("encoding, newline", [
    ("cp1252", "\r\n"), ("utf-16", "\n"), ("utf-8", "\r"), ("utf-8-sig", "\r\n")])
def test_other_encodings_and_line_ends(tmp_path, encoding, newline):
    lines = [line(c3="HÉLÈNE"), line(c3="HÉLÈNE", c29="B"), line("899700366240")]
    path = write_extract(tmp_path / "x.txt", lines, encoding=encoding, newline=newline)
    helene, other = read(path)
    assert helene.person[2] == "HÉLÈNE" and helene.lines == [2, 3] and not helene.warnings
    assert other.lines == [4]


def test_practitioner_with_one_bad_line_is_rejected_whole(tmp_path):
    good = line("899700218896")
    bad = line("899700218896", c21="SA08").removesuffix("|") + "|extra|"
    other = line("899700366240", c13="60")
    path = write_extract(tmp_path / "x.txt", [good, bad, other])
    rejected, entry = read(path)
    assert rejected == Rejected("899700218896", {
        2: "rejected with practitioner 899700218896 (see line 3)",
        3: "expected 49 fields, found 50"})
    assert isinstance(entry, Entry) and entry.id_nat == "899700366240"


def test_person_data_that_disagrees_between_lines_is_a_warning(tmp_path):
    path = write_extract(tmp_path / "x.txt", [line(), line(c3="AUTRE", c29="B")])
    (entry,) = read(path)
    assert entry.warnings == [
        (3, "family_name differs from line 2 of the same practitioner (line 2 kept)")]
    assert entry.person[2] == "NOM" and entry.lines == [2, 3]
    (exercice,) = entry.exercices.values()
    assert [a[9] for a in exercice.activities] == ["CABINET", "B"]


def test_invalid_bytes_reject_the_line(tmp_path):
    path = tmp_path / "x.txt"
    write_extract(path, [line(c3="NOM")])
    path.write_bytes(path.read_bytes().replace(b"|NOM|", b"|N\xffM|", 1))
    (rejected,) = read(path)
    assert "not valid in the file's encoding" in rejected.reasons[2]


def test_duplicate_lines_and_savoir_faire_products_are_folded(tmp_path):
    lines = [line(c18="S", c19="SM54", c29="A"), line(c18="S", c19="SM54", c29="B"),
             line(c18="CAPA", c19="CAPA12", c29="A"), line(c18="CAPA", c19="CAPA12", c29="B"),
             line(c18="S", c19="SM54", c29="A")]
    (entry,) = read(write_extract(tmp_path / "x.txt", lines))
    (exercice,) = entry.exercices.values()
    assert list(exercice.savoir_faire) == [("S", "SM54"), ("CAPA", "CAPA12")]
    assert [a[9] for a in exercice.activities] == ["A", "B"]


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"a|b|c\n", "the header lacks 44 required column\\(s\\): 'Identification nationale "
                 "PP', 'Type d'identifiant PP', 'Identifiant PP' and 41 more"),
    ("|".join(["Type d'identifiant PP", "X", *HEADER[2:]]).encode() + b"|\n",
     "the header lacks 1 required column\\(s\\): 'Identifiant PP'$"),
    ("|".join([*HEADER, "Code profession"]).encode() + b"|\n",
     "header column 50 repeats 'Code profession' \\(column 14\\)"),
    (b"\xff\xfe\x00\xd8|", "the header is not text"),
])
def test_files_that_are_not_extracts(tmp_path, content, message):
    path = tmp_path / "x.txt"
    path.write_bytes(content)
    with pytest.raises(ExtractError, match=message):
        read(path)


def test_unreadable_files(tmp_path):
    with pytest.raises(ExtractError, match="cannot read: No such file or directory"):
        read(tmp_path / "missing.txt")
    with pytest.raises(ExtractError, match="cannot read: Is a directory"):
        read(tmp_path)


# --- PSC's current formats (psc.md §10): read by header names ----------------------------

def content(found) -> list:
    """What the entries say, whatever the file's layout (its columns keyed by name)."""
    return [(e.id_nat, dict(zip(e.layout.person_attrs, e.person, strict=True)), e.other_ids,
             [(dict(zip(e.layout.exercice_attrs, x.fields, strict=True)), list(x.savoir_faire),
               [dict(zip(e.layout.activity_attrs, a, strict=True)) for a in x.activities])
              for x in e.exercices.values()], e.lines) for e in found]


def without(columns: list[str], *names: str) -> list[str]:
    return [c for c in columns if c not in names]


@pytest.mark.parametrize("width", [49, 50, 51])
@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_49_50_and_51_columns_in_utf8_and_windows_1252(tmp_path, width, encoding):
    columns = {51: list(PSC_HEADER),
               50: without(list(PSC_HEADER), "Autres identifiants"),
               49: list(HEADER)}[width]
    path = variant(PSC51, tmp_path / "x.txt", columns, encoding=encoding,
                   newline="\r\n" if encoding == "cp1252" else "\n")
    if encoding == "cp1252":
        assert b"B\xc9RARD" in path.read_bytes()  # É in Windows-1252
    found = read(path)
    # without Autres identifiants, nothing links the interleaved lines of one person
    interleaved = [LEFEVRE, LEFEVRE_ADELI] * (1 if width == 51 else 2)
    assert [e.id_nat for e in found] == [BERARD, *interleaved, DUPRE, PSI_ID, EDIT_ID]
    berard = content(found)[0]
    assert berard[1]["family_name"] == "BÉRARD" and berard[1]["given_names"] == "ÉLODIE'MARIE"
    ((_, savoir_faire, activities),) = berard[3]
    assert savoir_faire == [("S", "SM54"), ("CAPA", "CAPA05")]
    assert [a["raison_sociale"] for a in activities] == [
        "CABINET DU DR BÉRARD", "CENTRE HOSPITALIER DE DÉMONSTRATION"]
    genres = [a.get("genre_activite") for a in activities]
    assert genres == ([None, None] if width == 49 else ["GENR01", "GENR03"])
    assert berard[2] == (f"{BERARD},RPPS,1" if width == 51 else "")
    assert all(not e.warnings for e in found)


def test_reordered_columns_read_as_the_original(tmp_path):
    columns = list(PSC_HEADER)
    shuffled = columns[20:] + columns[:20][::-1]
    path = variant(PSC51, tmp_path / "x.txt", shuffled)
    assert content(read(path)) == content(read(PSC51))


def test_header_spelling_variants(tmp_path):
    spelled = [name.replace("'", "’").upper().replace("É", "E").replace(" ", "\u00a0", 1)
               for name in PSC_HEADER]
    spelled[-1] = " code genre d´activité "  # the 51st, as pscextract writes it, loosely
    spelled[0] = '"Type d\'identifiant PP"'
    path = variant(PSC51, tmp_path / "x.txt", list(PSC_HEADER), header=spelled)
    assert content(read(path)) == content(read(PSC51))


def test_50th_column_named_as_psc_loader_names_it(tmp_path):
    path = variant(PSC51, tmp_path / "x.txt", [*HEADER, "Code genre d'activité"],
                   header=[*HEADER, GENRE_HEADER])
    with open_extract(path) as extract:
        assert extract.layout.width == 50 and "genre_activite" in extract.layout.activity_attrs


def test_unknown_extra_column_is_reported_and_ignored(tmp_path):
    path = variant(PSC51, tmp_path / "x.txt", [*PSC_HEADER, "Nom de famille"],
                   header=[*PSC_HEADER, "Nom d'usage"])
    with open_extract(path) as extract:
        assert extract.layout.unknown == ((52, "Nom d'usage"),)
        assert content(entries(extract.lines, extract.layout)) == content(read(PSC51))


def test_lines_of_one_person_under_two_identifiers_are_grouped(tmp_path):
    by_id = {e.id_nat: e for e in read(PSC51)}
    rpps, adeli = by_id[LEFEVRE], by_id[LEFEVRE_ADELI]
    assert (rpps.lines, adeli.lines) == ([6, 8], [7, 9])  # written R A R A
    assert [len(x.activities) for x in rpps.exercices.values()] == [2]
    assert rpps.other_ids == adeli.other_ids == f"{LEFEVRE},RPPS,1;{LEFEVRE_ADELI},ADELI,1"


def test_a_person_without_profession_has_no_exercice():
    dupre = {e.id_nat: e for e in read(PSC51)}[DUPRE]  # "899700412325 " in the file
    assert dupre.exercices == {} and dupre.lines == [10]
    assert dict(zip(dupre.layout.person_attrs, dupre.person, strict=True))["phone"] == \
        "+33 633333333"


def test_warnings_for_what_psc_accepts_and_rejections_for_unusable_lines():
    found = read(RASS50)
    assert [(type(e).__name__, e.id_nat) for e in found] == [
        ("Entry", MENARD), ("Entry", GARCON), ("Entry", "899700412341"),
        ("Entry", "075123456"), ("Rejected", ""), ("Rejected", "0751234567")]
    assert found[0].person[3] == "HÉLÈNE'LOUISE"  # Windows-1252
    assert found[2].warnings == [
        (4, "idNat 899700412341 does not match identifier type 8 + identifier 99700412340"),
        (4, "RPPS 99700412340 has a wrong check digit (Luhn)")]
    assert found[3].warnings == [(5, "ADELI '75123456' is not 9 characters")]
    assert found[4].reasons == {6: "no idNat (Identification nationale PP)"}
    assert found[5].reasons == {7: "expected 50 fields, found 31"}


def test_test_identities_are_flagged_on_request(tmp_path):
    path = write_extract(tmp_path / "x.txt", [line("899700218896")])
    with open_extract(path) as extract:
        (entry,) = entries(extract.lines, extract.layout, test_ids=True)
    assert entry.warnings == [(2, "test identity 899700218896 (sandbox RPPS range 997…)")]
    assert read(path)[0].warnings == []


@pytest.mark.parametrize("values, plain", [
    ({}, True), ({"c29": 'CABINET "DES PINS"'}, False), ({"c3": "NOM\\AUTRE"}, False),
    ({"c29": "CABINET\tDES PINS"}, False), ({"c29": "CLINIQUE DES ÉTANGS"}, True)])
def test_the_digest_is_the_one_json_gives_whatever_the_text(tmp_path, values, plain):
    """Lines JSON writes as they are digest without ``json.dumps``, to the same digest:
    a practitioner stored before is still seen as unchanged."""
    path = write_extract(tmp_path / "x.txt", [line(**values), line(c13="60", **values)])
    (entry,) = read(path)
    person = list(entry.person)
    content = [person, [(e.fields, list(e.savoir_faire), list(e.activities))
                        for e in entry.exercices.values()]]
    expected = hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()
    assert entry.plain is plain
    assert entry.digest == expected
    if plain:
        assert dataclasses.replace(entry, plain=False).digest == expected


def test_read_ahead_keeps_order_raises_where_used_and_stops_early():
    def failing():
        yield from (1, 2)
        raise ExtractError("x.txt: read error at line 3: Input/output error")

    got = []
    with pytest.raises(ExtractError, match="line 3"), read_ahead(failing()) as ready:
        got.extend(ready)
    assert got == [1, 2]

    produced = []

    def endless():
        for number in itertools.count():
            produced.append(number)
            yield number

    threads = threading.active_count()
    with read_ahead(endless(), depth=2) as ready:
        assert next(ready) == 0
        time.sleep(0.3)
    assert threading.active_count() == threads
    assert len(produced) <= 4  # the one used, two queued, one waiting for room
