"""Reading extract files (psc.md §8): header, encodings, line endings, grouping of a
practitioner's lines and the rejection of a practitioner with any bad line."""

import pytest

from psc_idp.directory.extract import Entry, ExtractError, Rejected, entries, open_extract
from tests.directory_fixtures import SAMPLES, line, write_extract


def read(path):
    with open_extract(path) as lines:
        return list(entries(lines))


def test_sample_groups_lines_by_practitioner():
    found = read(SAMPLES[0])
    assert [item.id_nat for item in found] == [
        "0012800736", "0012800728", "0010000206", "810107592585", "810107592544"]
    evrard = found[1]
    assert evrard.lines == [3, 4, 5, 6]
    (exercice,) = evrard.exercices.values()
    assert len(exercice.activities) == 4
    assert isinstance(found[-1], Rejected)


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
    assert helene.person[2] == "HÉLÈNE" and helene.lines == [2, 3]
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


def test_person_data_must_agree_between_lines(tmp_path):
    path = write_extract(tmp_path / "x.txt", [line(), line(c3="AUTRE")])
    (rejected,) = read(path)
    assert rejected.reasons[3] == "family_name differs from line 2 of the same practitioner"


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
    (b"a|b|c\n", "header has 3 columns, expected 49"),
    ("|".join(["Type d'identifiant PP", "X", *["y"] * 47]).encode() + b"|\n",
     "header column 2 is 'X', expected 'Identifiant PP'"),
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
