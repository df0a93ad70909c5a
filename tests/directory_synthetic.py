"""Synthetic national directory extracts of any size, written line by line (the tests of
``directory sync`` and ``bench/directory_import.py``).

Practitioner ``i`` has the RPPS number ``998`` + ``i`` on 7 digits + its Luhn check digit
(idNat ``8`` + RPPS), one profession and two or three activities (one line each: 2.5 lines
per practitioner on average). ``removed`` leaves practitioners out, ``changed`` moves their
first activity to another structure, ``added`` appends new practitioners after the others:
the second extract of a test is the first one with a known difference. ``psc_columns``
writes PSC's own 51-column layout (``Autres identifiants``, ``Code genre d'activité``).
``Operator`` runs ``psc-idp`` commands in child processes, as an operator does, and
measures them."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from psc_idp.directory.columns import HEADER, PSC_HEADER
from psc_idp.directory.identifiers import luhn_valid
from tests.plugins.idp import SECRET

PREFIX = "998"  # the demo and test practitioners use 997…
LINES_PER_PRACTITIONER = 2.5


def id_nat(index: int) -> str:
    body = f"{PREFIX}{index:07d}"
    return "8" + next(body + digit for digit in "0123456789" if luhn_valid(body + digit))


@dataclass(frozen=True)
class Synthetic:
    path: Path
    lines: int
    practitioners: int


def practitioners_for(lines: int) -> int:
    """How many practitioners make about ``lines`` lines."""
    return max(1, round(lines / LINES_PER_PRACTITIONER))


def write_synthetic(path: Path, practitioners: int, *, removed: Collection[int] = (),
                    changed: Collection[int] = (), added: int = 0,
                    extra: Iterable[str] = (), psc_columns: bool = False) -> Synthetic:
    """Write an extract of practitioners ``0 … practitioners + added - 1`` minus
    ``removed``, then the ``extra`` lines as they are; streams, whatever the size.
    ``lines`` and ``practitioners`` count the synthetic ones only."""
    removed, changed = set(removed), set(changed)
    written = count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write("|".join(PSC_HEADER if psc_columns else HEADER) + "|\n")
        for index in range(practitioners + added):
            if index in removed:
                continue
            count += 1
            for text in _lines(index, index in changed, psc_columns):
                out.write(text)
                written += 1
        out.writelines(text + "\n" for text in extra)
    return Synthetic(path, written, count)


def _lines(index: int, changed: bool, psc_columns: bool = False) -> list[str]:
    nat = id_nat(index)
    person = [nat[0], nat[1:], nat, f"NOM{index}", f"PRENOM{index}'SECOND", "01/01/1970", "",
              "", "", "M", f"01{index:08d}", f"p{index}@example.org", "M"]
    exercice = ["10", "C", "DR", f"NOM{index}", f"PRENOM{index}"]
    lines = []
    for rank in range(2 + index % 2):
        structure = f"R{index}-{rank}" + ("-MOVED" if changed and rank == 0 else "")
        savoir_faire = ["S", "SM54"] if rank == 0 else ["", ""]
        activity = ["L" if rank else "S", "SA07", "", "FON-01", "", "", "", "", structure,
                    f"CABINET {structure}", "", "", "", str(rank + 1), "", "R",
                    "DE LA PAIX", "", "75001 PARIS", "75001", "75101", "", "", "", "", "",
                    "75", "", "ARS/ONI/ONI"]
        fields = person + exercice + savoir_faire + activity
        assert len(fields) == len(HEADER)
        if psc_columns:
            fields += [f"{nat},RPPS,1", "GENR01"]
        lines.append("|".join(fields) + "|\n")
    return lines


def _high_water_mb(pid: int) -> float:
    """The peak resident memory of the process's current program (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float
    rss_mb: float


class Operator:
    """Runs ``psc-idp`` commands in child processes, configured by environment."""

    def __init__(self, keys_dir, database_url, passphrase: str = "test-passphrase"):
        self.env = {**os.environ, "PSC_IDP_SECRET_KEY": SECRET,
                    "PSC_IDP_KEYS_DIR": str(keys_dir), "PSC_IDP_KEYS_PASSPHRASE": passphrase,
                    "PSC_IDP_DATABASE_URL": database_url}

    def start(self, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE):
        command = [sys.executable, "-c", "from psc_idp.cli import main; main()", *map(str, args)]
        return subprocess.Popen(command, env=self.env, stdout=stdout, stderr=stderr, text=True)

    def run(self, *args) -> Run:
        """Run to the end, with the child's own peak RSS: its ``VmHWM``, read while it
        runs. (``wait4``'s ``ru_maxrss`` is no good here: the kernel carries the peak of the
        memory the child was forked with across ``exec``, so it grows with the parent's —
        the test process's — own size.)"""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            started = time.monotonic()
            child = self.start(*args, stdout=out, stderr=err)
            peak = 0.0
            while child.poll() is None:
                peak = max(peak, _high_water_mb(child.pid))
                time.sleep(0.02)
            seconds = time.monotonic() - started
            out.seek(0)
            err.seek(0)
            return Run(child.returncode, out.read(), err.read(), seconds, peak)
