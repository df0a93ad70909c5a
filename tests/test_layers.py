"""The protocol owns the interaction; login methods only authenticate (STYLE.md §5): no
module of a login method imports protocol code — they reach the interaction through
``idp().interactions`` and hand back ``{id_nat, method, acr, amr, auth_time}``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import psc_idp

PACKAGE = Path(psc_idp.__file__).parent
#: the login methods and channels (the CIBA card channel: its API and the desktop tool)
METHODS = ["login", "ecps", "cards", "ciba/card.py", "ciba/card_tool.py",
           "ciba/card_messages.py"]


def imported_modules(path: Path) -> set[str]:
    """Absolute names of what ``path`` (a module of psc_idp) imports."""
    package = ".".join(("psc_idp", *path.relative_to(PACKAGE).parent.parts))
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[:len(base) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("area", METHODS)
def test_login_methods_never_import_the_protocol(area):
    offenders = {}
    target = PACKAGE / area
    for path in sorted(target.rglob("*.py") if target.is_dir() else [target]):
        protocol = sorted(n for n in imported_modules(path)
                          if n == "psc_idp.oidc" or n.startswith("psc_idp.oidc."))
        if protocol:
            offenders[str(path.relative_to(PACKAGE))] = protocol
    assert offenders == {}


def test_the_check_sees_a_protocol_import(tmp_path):
    """The check itself: a relative import of the protocol is recognised."""
    module = PACKAGE / "login" / "views.py"
    names = imported_modules(module)
    assert "psc_idp.errors.failure_page" in names and "psc_idp.extensions.idp" in names


def test_no_installed_dependencies_are_tracked():
    """node_modules and virtual environments are installed by scripts/setup, never committed
    (a worktree's symlink to them once slipped into a commit and broke a fresh checkout)."""
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=PACKAGE.parent, capture_output=True,
                             text=True, check=True).stdout.split("\n")
    assert [p for p in tracked if "node_modules" in p.split("/") or
            p.split("/")[0] in (".venv", "venv")] == []
