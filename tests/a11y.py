"""Accessibility checks of pages in headless Chromium: axe-core (npm, tests/interop) for the
serious and critical violations, and the sideways scroll of a phone screen. axe is evaluated
through the DevTools protocol, so the page's Content Security Policy stays in force."""

from __future__ import annotations

from pathlib import Path

AXE = Path(__file__).parent / "interop" / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(page) -> list[str]:
    """The serious and critical axe-core violations of the page: 'rule (impact): help at
    the first elements'."""
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    found = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} at "
            f"{[' '.join(n['target']) for n in v['nodes'][:3]]}"
            for v in found["violations"] if v["impact"] in ("serious", "critical")]


def overflows(page) -> bool:
    """Whether the page scrolls sideways (a 390 px wide phone)."""
    return page.evaluate("document.documentElement.scrollWidth > window.innerWidth")


class Auditor:
    """Screenshots (test artefacts), axe-core and the sideways-scroll check of every page a
    journey shows; ``problems`` lists what is wrong, for one assertion at the end."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.problems: list[str] = []
        self.pages = 0

    def check(self, page, name: str, language: str | None = None) -> None:
        page.wait_for_load_state("load")
        page.screenshot(path=str(self.directory / f"{name}.png"), full_page=True)
        self.pages += 1
        lang = page.evaluate("() => document.documentElement.lang")
        if language and lang != language:
            self.problems.append(f"{name}: page language {lang!r}, expected {language!r}")
        self.problems += [f"{name}: axe {violation}" for violation in axe_violations(page)]
        if overflows(page):
            width = page.evaluate("document.documentElement.scrollWidth")
            self.problems.append(f"{name}: scrolls sideways ({width} px wide)")
