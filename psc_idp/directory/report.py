"""What an import or sync of a directory extract did (psc.md §8): lines read, practitioners
by outcome, and two separate lists — **rejected** lines (unusable, not imported) and
**warnings** (imported anyway: checks PSC's loader does not make). Warnings never change the
exit status; rejected lines do."""

from __future__ import annotations

from dataclasses import dataclass, field

from .extract import Entry, Rejected
from .layout import Layout

#: rejected lines, and warnings, listed in a report (all are counted)
MAX_LISTED = 10_000
#: the figures an import keeps in its ``directory_import`` row
FIGURES = ("lines", "imported", "updated", "unchanged", "deactivated", "linked",
           "rejected_lines", "warnings")


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str
    source: str = ""


@dataclass(frozen=True)
class Notice:
    """``line`` 1 is the header (an unknown column)."""

    line: int
    message: str
    source: str = ""


@dataclass
class ImportReport:
    source: str
    lines: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    #: absent former identifiers linked to the practitioner who lists them (``links``)
    linked: int = 0
    rejected_practitioners: int = 0
    rejected_lines: int = 0
    warnings: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    warning_list: list[Notice] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rejected_lines == 0

    def reject(self, rejected: Rejected) -> None:
        self.rejected_practitioners += 1
        self.rejected_lines += len(rejected.reasons)
        room = MAX_LISTED - len(self.rejections)
        self.rejections.extend(Rejection(line, reason, self.source)
                               for line, reason in list(rejected.reasons.items())[:room])

    def warn(self, warnings: list[tuple[int, str]]) -> None:
        self.warnings += len(warnings)
        room = MAX_LISTED - len(self.warning_list)
        self.warning_list.extend(Notice(line, message, self.source)
                                 for line, message in warnings[:room])

    def header(self, layout: Layout) -> None:
        """Warn once about the header's unknown columns (they are ignored)."""
        self.warn([(1, f"unknown column '{name}' (header column {position}) ignored")
                   for position, name in layout.unknown])

    def entry(self, item: Entry | Rejected) -> None:
        if isinstance(item, Rejected):
            self.reject(item)
        elif item.warnings:
            self.warn(item.warnings)

    def summary(self) -> str:
        text = (f"{self.lines} lines, practitioners: {self.imported} imported, "
                f"{self.updated} updated, {self.unchanged} unchanged")
        if self.deactivated:
            text += f", {self.deactivated} deactivated"
        if self.linked:
            text += f", {self.linked} linked to their new idNat"
        return text + f"; {self.rejected_lines} lines rejected, {self.warnings} warnings"

    def listing(self) -> list[str]:
        """The rejected lines, then the warnings, one line each."""
        lines = [f"  rejected line {r.line}: {r.reason}" for r in self.rejections]
        unlisted = self.rejected_lines - len(self.rejections)
        if unlisted:
            lines.append(f"  … and {unlisted} more rejected lines")
        lines += [f"  warning line {w.line}: {w.message}" for w in self.warning_list]
        unlisted = self.warnings - len(self.warning_list)
        if unlisted:
            lines.append(f"  … and {unlisted} more warnings")
        return lines

    @classmethod
    def merge(cls, reports: list[ImportReport]) -> ImportReport:
        total = cls(", ".join(r.source for r in reports))
        for report in reports:
            for name in (*FIGURES, "rejected_practitioners"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            total.rejections.extend(report.rejections)
            total.warning_list.extend(report.warning_list)
        return total
