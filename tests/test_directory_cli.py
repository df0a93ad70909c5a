"""``psc-idp directory import FILE…``: summary, rejected lines and warnings, exit status
0 / 1 / 2 (warnings do not count), one-line errors without traceback."""

import os
import subprocess
import sys

import pytest

from psc_idp.directory.cli import directory
from psc_idp.directory.columns import HEADER, PSC_HEADER
from psc_idp.directory.lookup import find_active
from tests.directory_fixtures import (
    BERARD,
    DEMO,
    KIT,
    PSC51,
    RASS50,
    SAMPLES,
    directory_app,
    line,
    variant,
    write_extract,
)
from tests.plugins.idp import SECRET


@pytest.fixture
def app(keys_dir, database_url):
    yield from directory_app(keys_dir, database_url)


def run(app, *args):
    return app.test_cli_runner().invoke(directory, ["import", *map(str, args)])


def test_clean_file_exits_0(app):
    result = run(app, DEMO)
    assert result.exit_code == 0, result.output
    assert result.stdout == (f"{DEMO}: 5 lines, practitioners: 4 imported, 0 updated, "
                             "0 unchanged; 0 lines rejected, 0 warnings\n")
    assert find_active(KIT) is not None


def test_warnings_are_listed_and_exit_0(app):
    result = run(app, SAMPLES[0], SAMPLES[2])
    assert result.exit_code == 0, result.output
    mismatch = "idNat 810107592544 does not match identifier type 8 + identifier 10107582544"
    assert result.stdout.splitlines() == [
        f"{SAMPLES[0]}: 10 lines, practitioners: 5 imported, 0 updated, 0 unchanged; "
        "0 lines rejected, 2 warnings",
        f"  warning line 10: {mismatch}",
        "  warning line 10: RPPS 10107582544 has a wrong check digit (Luhn)",
        f"{SAMPLES[2]}: 8 lines, practitioners: 0 imported, 0 updated, 4 unchanged; "
        "0 lines rejected, 0 warnings",
    ]


def test_rejected_lines_exit_1_and_are_listed_apart_from_warnings(app):
    result = run(app, RASS50)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{RASS50}: 6 lines, practitioners: 4 imported, 0 updated, 0 unchanged; "
        "2 lines rejected, 3 warnings",
        "  rejected line 6: no idNat (Identification nationale PP)",
        "  rejected line 7: expected 50 fields, found 31",
        "  warning line 4: idNat 899700412341 does not match identifier type 8 + identifier "
        "99700412340",
        "  warning line 4: RPPS 99700412340 has a wrong check digit (Luhn)",
        "  warning line 5: ADELI '75123456' is not 9 characters",
    ]


def test_unreadable_file_exits_2_with_one_line(app, tmp_path):
    missing = tmp_path / "missing.txt"
    result = run(app, missing, DEMO)
    assert result.exit_code == 2
    assert result.stderr == f"psc-idp: error: {missing}: cannot read: No such file or directory\n"
    assert result.stdout.startswith(f"{DEMO}: 5 lines")


def test_wrong_format_exits_2(app, tmp_path):
    path = tmp_path / "clients.json"
    path.write_text('{"not": "an extract"}\n')
    result = run(app, path)
    assert result.exit_code == 2
    assert result.stderr == (f"psc-idp: error: {path}: not a directory extract "
                             "(Extraction_ProSanteConnect_Personne_activite): the header lacks "
                             "44 required column(s): 'Identification nationale PP', "
                             "'Type d'identifiant PP', 'Identifiant PP' and 41 more\n")


def test_missing_required_column_exits_2_and_imports_nothing(app, tmp_path):
    path = variant(PSC51, tmp_path / "x.txt", [c for c in PSC_HEADER if c != "Code profession"])
    result = run(app, path)
    assert result.exit_code == 2
    assert result.stderr == (f"psc-idp: error: {path}: not a directory extract "
                             "(Extraction_ProSanteConnect_Personne_activite): the header lacks "
                             "1 required column(s): 'Code profession'\n")
    assert result.stdout == "" and find_active(BERARD) is None


def test_unknown_column_is_one_warning(app, tmp_path):
    path = variant(PSC51, tmp_path / "x.txt", [*PSC_HEADER, "Nom de famille"],
                   header=[*PSC_HEADER, "Nom d'usage"])
    result = run(app, path)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{path}: 11 lines, practitioners: 6 imported, 0 updated, 0 unchanged; "
        "0 lines rejected, 1 warnings",
        "  warning line 1: unknown column 'Nom d'usage' (header column 52) ignored"]
    assert find_active(BERARD) is not None


@pytest.mark.parametrize("width", [49, 50, 51])
@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_every_format_and_encoding(app, tmp_path, width, encoding):
    columns = {49: list(HEADER), 50: [*HEADER, "Code genre d'activité"],
               51: list(PSC_HEADER)}[width]
    path = variant(PSC51, tmp_path / "x.txt", columns, encoding=encoding)
    result = run(app, path)
    # without Autres identifiants the interleaved lines of one person are 2 runs each
    (summary, *listed) = result.stdout.splitlines()
    imported = 6
    rejected = 0 if width == 51 else 2
    assert summary == (f"{path}: 11 lines, practitioners: {imported} imported, 0 updated, "
                       f"0 unchanged; {rejected} lines rejected, 0 warnings")
    assert result.exit_code == (1 if rejected else 0)
    assert all("already read earlier in this file" in text for text in listed)
    assert find_active(BERARD).family_name == "BÉRARD"
    genres = [a.genre_activite for a in find_active(BERARD).exercices[0].activities]
    assert genres == (["GENR01", "GENR01"] if width == 49 else ["GENR01", "GENR03"])


def test_full_deactivates_and_takes_one_file(app, tmp_path):
    run(app, DEMO)
    only_one = write_extract(tmp_path / "full.txt", [line("899700218896")])
    result = run(app, "--full", only_one)
    assert result.exit_code == 0
    assert "1 updated, 0 unchanged, 3 deactivated" in result.stdout
    assert find_active(KIT) is None
    assert run(app, "--full", only_one, DEMO).exit_code == 2


def test_installed_command(keys_dir, database_url, tmp_path):
    """The real ``psc-idp`` entry point, configured by environment, as an operator runs it."""
    env = {**os.environ, "PSC_IDP_SECRET_KEY": SECRET, "PSC_IDP_KEYS_DIR": str(keys_dir),
           "PSC_IDP_KEYS_PASSPHRASE": "test-passphrase", "PSC_IDP_DATABASE_URL": database_url}
    command = [sys.executable, "-c", "from psc_idp.cli import main; main()", "directory",
               "import"]
    done = subprocess.run([*command, str(SAMPLES[1])], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "0 lines rejected, 2 warnings" in done.stdout
    assert "  warning line 10: idNat" in done.stdout
    rejected = subprocess.run([*command, str(RASS50)], env=env, capture_output=True,
                              text=True, timeout=120)
    assert rejected.returncode == 1 and "  rejected line 6: no idNat" in rejected.stdout
    bad = subprocess.run([*command, str(tmp_path)], env=env, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2
    assert bad.stderr == f"psc-idp: error: {tmp_path}: cannot read: Is a directory\n"


def test_test_identities_are_warnings_in_production(keys_dir, database_url, cards):
    """A production directory holding sandbox identities (RPPS 997…) is suspicious: each is
    reported, and still imported (exit 0)."""
    pki = cards.pki
    production = directory_app(
        keys_dir, database_url, mode="production", issuer="https://idp.example/auth",
        card_login_url="https://card.idp.example", card_trust_anchors=[str(pki.trust_anchor)],
        card_intermediates=[str(pki.issuing_ca)], card_crls=[str(pki.crl)],
        sms_gateway="http", sms_http_url="https://sms.example/send", smtp_host="smtp.example")
    app = next(production)
    try:
        result = run(app, DEMO)
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[1:] == [
            f"  warning line {n}: test identity {id_nat} (sandbox RPPS range 997…)"
            for n, id_nat in ((2, KIT), (3, "899700218896"), (5, "899700075122"),
                              (6, "899700366240"))]
        assert find_active(KIT) is not None
    finally:
        next(production, None)
