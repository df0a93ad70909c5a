"""``psc-idp directory import FILE…``: summary and rejected lines, exit status 0 / 1 / 2,
one-line errors without traceback."""

import os
import subprocess
import sys

import pytest

from psc_idp.directory.cli import directory
from psc_idp.directory.lookup import find_active
from tests.directory_fixtures import DEMO, KIT, SAMPLES, directory_app, line, write_extract
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
                             "0 unchanged; 0 lines rejected\n")
    assert find_active(KIT) is not None


def test_rejected_lines_exit_1_and_are_listed(app):
    result = run(app, SAMPLES[0], SAMPLES[2])
    assert result.exit_code == 1
    mismatch = "idNat 810107592544 does not match identifier type 8 + identifier 10107582544"
    assert result.stdout.splitlines() == [
        f"{SAMPLES[0]}: 10 lines, practitioners: 4 imported, 0 updated, 0 unchanged; "
        "2 lines rejected",
        f"  line 10: {mismatch}",
        f"  line 11: {mismatch}",
        f"{SAMPLES[2]}: 8 lines, practitioners: 0 imported, 0 updated, 4 unchanged; "
        "0 lines rejected",
    ]


def test_unreadable_file_exits_2_with_one_line(app, tmp_path):
    missing = tmp_path / "missing.txt"
    result = run(app, missing, DEMO)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {missing}: cannot read: No such file or directory\n"
    assert result.stdout.startswith(f"{DEMO}: 5 lines")


def test_wrong_format_exits_2(app, tmp_path):
    path = tmp_path / "clients.json"
    path.write_text('{"not": "an extract"}\n')
    result = run(app, path)
    assert result.exit_code == 2
    assert result.stderr == (f"Error: {path}: not a directory extract "
                             "(Extraction_ProSanteConnect_Personne_activite): header has 1 "
                             "columns, expected 49\n")


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
    assert done.returncode == 1, done.stderr
    assert "2 lines rejected" in done.stdout and "  line 11: idNat" in done.stdout
    bad = subprocess.run([*command, str(tmp_path)], env=env, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2
    assert bad.stderr == f"Error: {tmp_path}: cannot read: Is a directory\n"
